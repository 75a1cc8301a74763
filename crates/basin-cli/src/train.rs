//! `basin train`: trains an energy prior by denoising score matching from a TOML recipe, with a
//! progress bar, periodic checkpoints, resume, and a model card written into the weights.

use anyhow::{bail, Context, Result};
use basin_export::{atomic_write, nifti_in::read_nifti_volume};
use basin_prior::data::tissue_slices;
use basin_prior::recipe::{ExpertsSec, Recipe};
use basin_prior::train::{TrainConfig, Trainer};
use basin_prior::weights::to_safetensors;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `basin train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training recipe (TOML): model shape, σ range, steps, batch, patch, learning rate, seed,
    /// data sources and augmentations. The shipped one is crates/basin-prior/model/default.toml.
    #[arg(long)]
    config: PathBuf,
    /// Output weights (safetensors with the model card). A checkpoint is kept next to it as
    /// OUT.ckpt (float64 weights and optimiser state).
    #[arg(short, long)]
    out: PathBuf,
    /// Continue from OUT.ckpt: the same steps, losses and weights as an uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps in total (a shorter run of the same recipe; the learning-rate
    /// schedule still follows the recipe's step count, and the recipe's [experts] are fitted
    /// only when the network has run all of its steps).
    #[arg(long)]
    steps: Option<usize>,
    /// Overwrite OUT (and start over instead of refusing when OUT.ckpt exists).
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    /// Print a JSON summary (steps, losses, seconds) on stdout.
    #[arg(long)]
    json: bool,
    /// Skip the network's training: take the network of these weights (an earlier `basin
    /// train` of the same [model]) and only fit the recipe's [experts] on top of it.
    #[arg(long, value_name = "FILE")]
    network: Option<PathBuf>,
}

fn load_recipe(path: &Path) -> Result<(Recipe, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the training recipe", path.display()))?;
    let r = Recipe::from_toml(&text)
        .map_err(|e| crate::exit::usage(format!("{}: {e}", path.display())))?;
    Ok((r, text))
}

fn write_bytes(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    atomic_write(path, overwrite, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Runs `basin train`.
pub fn run(a: TrainArgs) -> Result<()> {
    let (recipe, text) = load_recipe(&a.config)?;
    let cfg = recipe.train_config();
    let total = a.steps.unwrap_or(cfg.steps);
    let ckpt = PathBuf::from(format!("{}.ckpt", a.out.display()));
    let mut inputs = vec![a.config.as_path()];
    inputs.extend(a.network.as_deref());
    basin_export::check_outputs(&inputs, &[a.out.as_path(), ckpt.as_path()], true)?;
    if a.out.exists() && !a.force {
        return Err(basin_export::ExportError::Exists(a.out.clone()).into());
    }
    if ckpt.exists() && !a.resume && !a.force {
        return Err(crate::exit::output(format!(
            "{}: a checkpoint of an earlier run exists: --resume to continue it, --force to start over",
            ckpt.display()
        )));
    }
    // Training data: tissue slices of every source, in all three orientations; the expert
    // field's own when the recipe names them (read before a long training run, so that a bad
    // path fails at once).
    let min_tissue = recipe.data.min_tissue;
    let expert_sources = recipe.experts.as_ref().and_then(|e| e.sources.as_deref());
    let synthesised = synthesise_slices(&recipe, a.quiet)?;
    if let Some(net) = &a.network {
        let src = expert_sources.unwrap_or(&recipe.data.sources);
        let data = load_slices(src, min_tissue, a.quiet)?.with(synthesised);
        return fit_only(&a, net, &recipe, &text, &cfg, &data);
    }
    // The expert field's own sources get a copy of the synthesised slices; [data] takes them.
    let expert_data = match expert_sources {
        Some(src) => Some(load_slices(src, min_tissue, a.quiet)?.with(synthesised.clone())),
        None => None,
    };
    let data = load_slices(&recipe.data.sources, min_tissue, a.quiet)?.with(synthesised);
    let expert_data = expert_data.as_ref().unwrap_or(&data);
    let slices = &data.slices;
    let mut trainer = if a.resume {
        let bytes =
            std::fs::read(&ckpt).with_context(|| format!("{}: cannot read", ckpt.display()))?;
        let t =
            Trainer::resume(cfg.clone(), &bytes).with_context(|| format!("{}", ckpt.display()))?;
        if !a.quiet {
            eprintln!("resuming at step {}", t.step_count());
        }
        t
    } else {
        Trainer::new(cfg.clone())
    };
    let mut card = HashMap::from([
        ("format".to_string(), "basin-prior pyramid v1".to_string()),
        (
            "architecture".to_string(),
            format!(
                "{} pyramid levels (2x2 mean pooling, level s at sigma/2^s), each E = (1/sigma) sum_k alpha_k softplus(W2 * softplus(W1 * x + b1 + a1 log sigma) + b2)_k; W1 [{}, 2, {}, {}], W2 [{}, {}, {}, {}]",
                cfg.levels, cfg.c1, cfg.k1, cfg.k1, cfg.c2, cfg.c1, cfg.k2, cfg.k2
            ),
        ),
        ("sigma_range".to_string(), format!("{} {}", cfg.sigma_min, cfg.sigma_max)),
        ("image_scaling".to_string(), "99th percentile of the magnitude = 1".to_string()),
        ("recipe".to_string(), text.clone()),
        ("seed".to_string(), cfg.seed.to_string()),
        ("data".to_string(), data.provenance.clone()),
    ]);
    if let (true, Some(e)) = (recipe.training.residual_of_experts, &recipe.experts) {
        // Deterministic from the recipe, so a resumed run refits the same field.
        let start = Instant::now();
        let net = basin_prior::fast::FastPyramid::new(trainer.model()).network_only();
        let (field, report) =
            basin_prior::experts::fit(&net, slices, &e.fit_config(&cfg, false), |m| {
                if !a.quiet {
                    eprintln!("residual field: {m}");
                }
            });
        let mut table = String::from("| σ | DSM loss of the field alone |\n|---|---|\n");
        for (s, _, b) in &report.rows {
            table.push_str(&format!("| {s:.4} | {b:.4} |\n"));
        }
        card.insert(
            "residual_field".into(),
            format!(
                "the network was trained on the residual of this expert field ([experts] with_network = false, on the [data] sources, {:.0} s):\n{table}",
                start.elapsed().as_secs_f64()
            ),
        );
        trainer.set_residual_field(Some(field));
    }
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_position(trainer.step_count() as u64);
        b
    };
    let start = Instant::now();
    let first = trainer.step_count();
    let mut losses = Vec::new();
    let mut ema: Option<f64> = None;
    while trainer.step_count() < total {
        let loss = trainer.step(slices);
        if !loss.is_finite() {
            bail!(
                "step {}: the loss is {loss}: training diverged (lower lr in the recipe); the last checkpoint {} is intact",
                trainer.step_count(),
                ckpt.display()
            );
        }
        losses.push(loss);
        let e = ema.map_or(loss, |e| 0.98 * e + 0.02 * loss);
        ema = Some(e);
        let done = trainer.step_count() - first;
        let pps = (done * cfg.batch) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {e:.4} ({pps:.1} patches/s)"));
        bar.inc(1);
        if trainer.step_count() % recipe.training.checkpoint_every == 0
            || trainer.step_count() == total
        {
            card.insert("steps".into(), trainer.step_count().to_string());
            write_bytes(&ckpt, &trainer.checkpoint(&card)?, true)?;
            if bar.is_hidden() && !a.quiet {
                // No terminal (a log file): one line per checkpoint instead of the bar.
                eprintln!(
                    "step {} loss {e:.4} {pps:.1} patches/s {:.0} s",
                    trainer.step_count(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    card.insert("steps".into(), trainer.step_count().to_string());
    card.insert(
        "training_time".into(),
        format!(
            "{secs:.0} s for steps {first}..{} on {} threads (earlier segments of a resumed run not counted)",
            trainer.step_count(),
            rayon::current_num_threads()
        ),
    );
    card.insert(
        "final_loss".into(),
        format!("{:.5} (mean of the last 50 steps)", tail_mean(&losses, 50)),
    );
    let mut model = trainer.model().clone();
    match &recipe.experts {
        // The experts are fitted on the finished network; a shorter run (--steps) writes the
        // network alone.
        Some(e) if trainer.step_count() >= cfg.steps => {
            fit_experts(&mut model, &mut card, e, &cfg, expert_data, a.quiet)?
        }
        Some(_) => {
            card.insert(
                "experts".into(),
                format!(
                    "not fitted: the network stopped at step {} of {} (--steps)",
                    trainer.step_count(),
                    cfg.steps
                ),
            );
        }
        None => {}
    }
    write_bytes(&a.out, &to_safetensors(&model, &card)?, a.force)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"out": a.out, "steps": trainer.step_count(), "seconds": secs, "losses": losses})
        );
    } else if !a.quiet {
        eprintln!(
            "wrote {} after {} steps ({secs:.0} s, final loss {:.4})",
            a.out.display(),
            trainer.step_count(),
            tail_mean(&losses, 50)
        );
    }
    Ok(())
}

/// `--network`: the network of `net` as trained, the recipe's experts fitted on top.
fn fit_only(
    a: &TrainArgs,
    net: &Path,
    recipe: &Recipe,
    text: &str,
    cfg: &TrainConfig,
    data: &TrainingData,
) -> Result<()> {
    let Some(e) = &recipe.experts else {
        return Err(crate::exit::usage(format!(
            "--network fits the recipe's [experts] on a trained network, and {} has no [experts] section",
            a.config.display()
        )));
    };
    let bytes = std::fs::read(net).with_context(|| format!("{}: cannot read", net.display()))?;
    let (mut model, mut card) = basin_prior::weights::from_safetensors(&bytes)
        .with_context(|| format!("{}: not basin prior weights", net.display()))?;
    let want = (cfg.levels, cfg.c1, cfg.k1, cfg.c2, cfg.k2);
    let have = model.levels.first().map(|l| {
        let (c1, _, k1, _) = l.w1.dim();
        let (c2, _, k2, _) = l.w2.dim();
        (model.levels.len(), c1, k1, c2, k2)
    });
    if have != Some(want) {
        bail!(
            "{}: the network has (levels, c1, k1, c2, k2) = {have:?}, the recipe's [model] {want:?}",
            net.display()
        );
    }
    model.experts = None;
    card.retain(|k, _| {
        !k.starts_with("experts")
            && k != "validation"
            && !k.starts_with("score_")
            && !k.starts_with("prior_score_")
    });
    card.insert("recipe".into(), text.to_string());
    card.insert(
        "network_from".into(),
        format!(
            "{} (its network as trained; `basin train --network` fitted the experts)",
            net.display()
        ),
    );
    fit_experts(&mut model, &mut card, e, cfg, data, a.quiet)?;
    write_bytes(&a.out, &to_safetensors(&model, &card)?, a.force)?;
    if !a.quiet {
        eprintln!("wrote {}", a.out.display());
    }
    Ok(())
}

/// Training slices and where they came from.
#[derive(Clone)]
struct TrainingData {
    slices: Vec<ndarray::Array2<f32>>,
    /// For the model card (DATA.md): the count, the source paths, and the Colin27 licence and
    /// validation note when every source is one of Debian mricron-data's templates (the only
    /// sources this can vouch for).
    provenance: String,
}

impl TrainingData {
    /// These slices and the synthesised contrasts' (their provenance appended).
    fn with(mut self, other: TrainingData) -> TrainingData {
        if !other.slices.is_empty() {
            self.slices.extend(other.slices);
            self.provenance = format!("{}; {}", self.provenance, other.provenance);
        }
        self
    }
}

/// The recipe's `[data] contrasts`, synthesised from each `[data]` source by basin-phantom's
/// MR-physics synthesis (the presets of `basin phantom --contrast` at 3 T, 5 % per-voxel
/// variation, ±10 % receive bias, seeded from the training seed): their tissue slices in all
/// three orientations. Empty when the recipe names none.
fn synthesise_slices(recipe: &Recipe, quiet: bool) -> Result<TrainingData> {
    use basin_phantom::contrast::{classify, synthesize_from, ContrastSpec};
    let mut slices = Vec::new();
    let mut names = Vec::new();
    if recipe.data.contrasts.is_empty() {
        return Ok(TrainingData {
            slices,
            provenance: String::new(),
        });
    }
    for (i, src) in recipe.data.sources.iter().enumerate() {
        let (vol, _) = basin_export::nifti_in::read_axial(src)
            .with_context(|| format!("training source {}", src.display()))?;
        let peak = 1.0 / basin_prior::data::p99_scale(vol.iter());
        let tissues = classify(vol.view());
        for (j, name) in recipe.data.contrasts.iter().enumerate() {
            let seed = recipe.training.seed ^ ((i as u64) << 8 | j as u64);
            let spec = ContrastSpec::preset(name, 3.0, seed).ok_or_else(|| {
                crate::exit::usage(format!("[data] contrasts: no sequence preset {name:?}"))
            })?;
            let synth = synthesize_from(&tissues, &spec, peak);
            let s = tissue_slices(synth.view(), recipe.data.min_tissue);
            if !quiet {
                eprintln!(
                    "{} as {name} (synthesised): {} tissue slices",
                    src.display(),
                    s.len()
                );
            }
            names.push(format!("{} as {name}", src.display()));
            slices.extend(s);
        }
    }
    Ok(TrainingData {
        provenance: format!(
            "{} tissue slices of contrasts synthesised with MR physics (basin_phantom::contrast, 3 T) from {}",
            slices.len(),
            names.join(", ")
        ),
        slices,
    })
}

/// Tissue slices (all three orientations) of every source volume.
fn load_slices(sources: &[PathBuf], min_tissue: f64, quiet: bool) -> Result<TrainingData> {
    let mut slices = Vec::new();
    for src in sources {
        let vol = read_nifti_volume(src).with_context(|| {
            format!(
                "training source {} (Colin27 comes with Debian's mricron-data; .ci/install-deps installs it)",
                src.display()
            )
        })?;
        let s = tissue_slices(vol.view(), min_tissue);
        if !quiet {
            eprintln!(
                "{}: {:?} voxels, {} tissue slices",
                src.display(),
                vol.shape(),
                s.len()
            );
        }
        slices.extend(s);
    }
    if slices.is_empty() {
        bail!("no slice of the sources has enough tissue (min_tissue = {min_tissue})");
    }
    let names: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    let origin = if sources
        .iter()
        .all(|p| p.starts_with("/usr/share/mricron/templates"))
    {
        "Colin27 T1, Debian mricron-data 1.2.20211006, BSD-3-Clause; validation anatomy (MNI152 2009a) never trained on"
    } else {
        "not only Debian mricron-data's Colin27 templates: provenance as the recipe's sources"
    };
    Ok(TrainingData {
        provenance: format!(
            "{} tissue slices from {} ({origin})",
            slices.len(),
            names.join(", ")
        ),
        slices,
    })
}

/// Fits the expert field of `e` on top of `model`'s network and records it in the card.
fn fit_experts(
    model: &mut basin_prior::Pyramid,
    card: &mut HashMap<String, String>,
    e: &ExpertsSec,
    cfg: &TrainConfig,
    data: &TrainingData,
    quiet: bool,
) -> Result<()> {
    let slices = &data.slices;
    let start = Instant::now();
    let fc = e.fit_config(cfg, e.with_network);
    let net = basin_prior::fast::FastPyramid::new(model).network_only();
    let (experts, report) = basin_prior::experts::fit(&net, slices, &fc, |m| {
        if !quiet {
            eprintln!("experts: {m}");
        }
    });
    let mut table =
        String::from("| σ | DSM loss, network alone | DSM loss, fitted energy |\n|---|---|---|\n");
    for (s, a, b) in &report.rows {
        table.push_str(&format!("| {s:.4} | {a:.4} | {b:.4} |\n"));
    }
    if !quiet {
        eprint!("{table}");
    }
    card.insert("experts_fit".into(), table);
    card.insert("experts_data".into(), data.provenance.clone());
    card.insert(
        "experts_fit_time".into(),
        format!(
            "{:.0} s on {} threads",
            start.elapsed().as_secs_f64(),
            rayon::current_num_threads()
        ),
    );
    card.insert(
        "format".into(),
        "basin-prior pyramid v1 + experts v1".into(),
    );
    card.insert(
        "architecture".into(),
        format!(
            "{}; plus a field of {} Gaussian-scale-mixture experts on fixed Haar filters, exactly smoothed by the noise, E = sum_k alpha_k(sigma) sum_p psi_k(|f_k * x|^2) + beta(sigma) E_net",
            card.get("architecture")
                .map(|a| a.split("; plus a field").next().unwrap_or("").to_string())
                .unwrap_or_default(),
            experts.len()
        ),
    );
    model.experts = Some(experts);
    Ok(())
}

fn tail_mean(v: &[f64], n: usize) -> f64 {
    let t = &v[v.len().saturating_sub(n)..];
    t.iter().sum::<f64>() / t.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    /// The recipe accepts exactly the contrasts basin-phantom can synthesise (two crates, one
    /// list of names).
    #[test]
    fn recipe_contrasts_are_the_phantoms_presets() {
        let mut recipe = basin_prior::recipe::CONTRASTS.to_vec();
        let mut phantom = basin_phantom::contrast::Sequence::PRESETS.to_vec();
        recipe.sort_unstable();
        phantom.sort_unstable();
        assert_eq!(recipe, phantom);
        for name in phantom {
            assert!(
                basin_phantom::contrast::Sequence::preset(name).is_some(),
                "{name}"
            );
        }
    }
}
