//! Protocol resolution and the work bound (issue 23).

use basin_recon::protocol::{Protocol, MAX_EBM_PRIOR_STEPS};

/// A `sense.toml` in the search directory (the working directory's `protocols/` used to be
/// searched first) must not replace the built-in `sense`; other names still find their file.
#[test]
fn built_in_names_win_over_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let local =
        "name = \"sense\"\ndescription = \"a local impostor\"\n[solver]\nkind = \"zero-filled\"\n";
    std::fs::write(dir.path().join("sense.toml"), local).unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        local.replace("\"sense\"", "\"mine\""),
    )
    .unwrap();
    let (p, source) = Protocol::locate("sense", Some(dir.path())).unwrap();
    assert_eq!(source, "built-in");
    assert!(matches!(
        p.solver,
        basin_recon::protocol::Solver::CgSense { .. }
    ));
    let (p, source) = Protocol::locate("mine", Some(dir.path())).unwrap();
    assert_eq!(p.name, "mine");
    assert!(source.ends_with("mine.toml"), "{source}");
    // An explicit path to the local file is taken as written.
    let path = dir.path().join("sense.toml");
    let (p, _) = Protocol::locate(path.to_str().unwrap(), None).unwrap();
    assert_eq!(p.description, "a local impostor");
}

/// Every EBM parameter within 1..=1000 but their product past the documented bound: refused
/// before any data are read.
#[test]
fn an_ebm_protocol_past_the_work_bound_is_refused() {
    let text = |levels: usize, inner: usize| {
        format!(
            "name = \"x\"\n[solver]\nkind = \"ebm\"\nsigma_max = 0.05\nsigma_min = 0.01\nlevels = {levels}\ninner = {inner}\ncg_iterations = 5\ninit_iterations = 10\nprior_weight = 1\n"
        )
    };
    assert!(Protocol::from_toml(&text(6, 5), "t").is_ok());
    let e = Protocol::from_toml(&text(1000, 1000), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&MAX_EBM_PRIOR_STEPS.to_string()), "{e}");
    assert!(Protocol::from_toml(&text(100, 10), "t").is_ok());
    assert!(Protocol::from_toml(&text(100, 11), "t").is_err());
}
