//! The shipped `sbatch` script on a real single-node Slurm (Debian's slurmctld, slurmd and
//! munge, installed by .ci/install-deps): the test starts munged, slurmctld and slurmd on
//! localhost with a throw-away configuration (its own ports, state and socket in a temporary
//! folder), submits a 6-row manifest as a 3-task job array, waits for it and stops the daemons.
//! It is skipped, saying why, only where the daemons cannot start at all (not root, no
//! packages).

use basin_tests::{basin_bin, phantom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The daemons of one test cluster, stopped on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    socket: PathBuf,
}

impl Cluster {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .cmd("scontrol")
            .arg("shutdown")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(500));
        for pid_file in ["slurmd.pid", "slurmctld.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(pid_file)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        let _ = Command::new("munged")
            .arg("-s")
            .arg(format!("--socket={}", self.socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run_ok(c: &mut Command) -> Result<String, String> {
    let o = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).to_string())
    } else {
        Err(format!(
            "{c:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Starts munged, slurmctld and slurmd in `dir`; Err(why) when Slurm cannot start here.
fn start(dir: &Path) -> Result<Cluster, String> {
    for prog in [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sinfo",
        "scontrol",
    ] {
        if which(prog).is_none() {
            return Err(format!(
                "{prog} is not installed (bash .ci/install-deps installs Slurm)"
            ));
        }
    }
    if run_ok(Command::new("id").arg("-u"))?.trim() != "0" {
        return Err("slurmd needs root to start jobs as other users; run as root".into());
    }
    let host = run_ok(Command::new("hostname").arg("-s"))?
        .trim()
        .to_string();
    for d in ["state", "spool", "munge"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    let key = dir.join("munge/munge.key");
    let bytes: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&key, bytes).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400))
        .map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir.join("munge"), std::fs::Permissions::from_mode(0o711))
        .map_err(|e| e.to_string())?;
    let socket = dir.join("munge/munge.sock");
    let conf = dir.join("slurm.conf");
    let cluster = Cluster {
        dir: dir.to_path_buf(),
        conf: conf.clone(),
        socket: socket.clone(),
    };
    run_ok(
        Command::new(which("munged").unwrap())
            .arg("--force")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--log-file={}", dir.join("munged.log").display()))
            .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
            .arg(format!("--seed-file={}", dir.join("munge/seed").display())),
    )?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let d = dir.display();
    let text = format!(
        "ClusterName=basintest\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         SlurmctldPort={}\nSlurmdPort={}\n\
         AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={}\n\
         SlurmUser=root\nSlurmdUser=root\n\
         StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
         SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
         SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n\
         MpiDefault=none\nReturnToService=2\nSchedulerType=sched/builtin\n\
         JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN\n\
         PartitionName=basin Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES\n",
        free_port(),
        free_port(),
        socket.display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    run_ok(
        cluster
            .cmd(which("slurmctld").unwrap().to_str().unwrap())
            .arg("-i"),
    )?;
    run_ok(&mut cluster.cmd(which("slurmd").unwrap().to_str().unwrap()))?;
    let t = Instant::now();
    loop {
        let state = run_ok(cluster.cmd("sinfo").args(["-h", "-o", "%T"])).unwrap_or_default();
        if state.trim() == "idle" {
            return Ok(cluster);
        }
        if t.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.join("slurmctld.log")).unwrap_or_default();
            return Err(format!(
                "the node is {:?} after 60 s; slurmctld log:\n{log}",
                state.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_sbatch_script_runs_a_manifest_as_a_job_array() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Jobs run as root from this folder; keep it reachable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = match start(&dir.join("slurm")) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: Slurm cannot start on this machine: {why}");
            return;
        }
    };
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut csv = String::from("input,output\n");
    for i in 1..=6 {
        let seed = i.to_string();
        phantom(
            &data,
            &format!("s{i}.h5"),
            &["--matrix", "32", "--coils", "2", "--seed", &seed],
        );
        csv.push_str(&format!("s{i}.h5,out/s{i}.nii.gz\n"));
    }
    let manifest = data.join("scans.csv");
    std::fs::write(&manifest, csv).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/basin-cli/deploy/slurm/basin-batch.sbatch");
    // The script's resource requests are for a real node; this one has 2 CPUs and 4000 MB.
    let out = run_ok(
        cluster
            .cmd("timeout")
            .arg("600")
            .arg(which("sbatch").unwrap())
            .args([
                "--wait",
                "--parsable",
                "--array=0-2",
                "--cpus-per-task=1",
                "--mem=500",
            ])
            .arg(format!("--output={}/task-%a.log", data.display()))
            .arg(format!("--chdir={}", data.display()))
            .arg(&script)
            .arg(&manifest)
            .args(["-p", "sense", "--backend", "cpu"])
            .env("BASIN", basin_bin()),
    );
    let logs: String = (0..3)
        .map(|i| std::fs::read_to_string(data.join(format!("task-{i}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n");
    let job = match out {
        Ok(o) => o.trim().to_string(),
        Err(e) => panic!("sbatch failed: {e}\ntask logs:\n{logs}"),
    };
    for i in 1..=6 {
        let o = data.join(format!("out/s{i}.nii.gz"));
        assert!(o.is_file(), "{} missing; task logs:\n{logs}", o.display());
    }
    let mut rows = Vec::new();
    for task in 0..3u64 {
        let f = data.join(format!("basin-batch-summaries/summary-{job}_{task}.json"));
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&f)
                .unwrap_or_else(|e| panic!("{}: {e}; task logs:\n{logs}", f.display())),
        )
        .unwrap();
        assert_eq!(s["shard"]["index"], task, "{s}");
        assert_eq!(s["shard"]["count"], 3, "{s}");
        assert_eq!(s["done"], 2, "{s}");
        for r in s["rows"].as_array().unwrap() {
            rows.push(r["row"].as_u64().unwrap());
        }
    }
    rows.sort();
    assert_eq!(rows, vec![1, 2, 3, 4, 5, 6], "every row exactly once");
}
