//! Model weights in safetensors: for each pyramid level s, tensors `level{s}.w1`, `.b1`, `.a1`,
//! `.w2`, `.b2`, `.alpha` as float32, and the model card (architecture, σ range, recipe, seed, data provenance, validation metrics) as
//! string metadata. Loading checks names, dtypes, shapes and finiteness, naming the tensor at fault.

use crate::model::EnergyModel;
use crate::pyramid::Pyramid;
use crate::PriorError;
use ndarray::{Array1, Array4};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;

fn f32_bytes(values: impl Iterator<Item = f64>) -> Vec<u8> {
    values.flat_map(|v| (v as f32).to_le_bytes()).collect()
}

/// Serialises `model` (as float32) with `card` as metadata.
pub fn to_safetensors(
    model: &Pyramid,
    card: &HashMap<String, String>,
) -> Result<Vec<u8>, PriorError> {
    to_safetensors_with(model, card, Vec::new())
}

/// [`to_safetensors`] with extra float64 tensors (training checkpoints: optimiser state).
pub fn to_safetensors_with(
    model: &Pyramid,
    card: &HashMap<String, String>,
    extra_f64: Vec<(String, Vec<f64>)>,
) -> Result<Vec<u8>, PriorError> {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
    for (name, v) in extra_f64 {
        let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((name, vec![v.len()], b, Dtype::F64));
    }
    for (s, l) in model.levels.iter().enumerate() {
        let t = |name: &str, shape: &[usize], it: &mut dyn Iterator<Item = &f64>| {
            (
                format!("level{s}.{name}"),
                shape.to_vec(),
                f32_bytes(it.copied()),
                Dtype::F32,
            )
        };
        bufs.push(t("w1", l.w1.shape(), &mut l.w1.iter()));
        bufs.push(t("b1", l.b1.shape(), &mut l.b1.iter()));
        bufs.push(t("a1", l.a1.shape(), &mut l.a1.iter()));
        bufs.push(t("w2", l.w2.shape(), &mut l.w2.iter()));
        bufs.push(t("b2", l.b2.shape(), &mut l.b2.iter()));
        bufs.push(t("alpha", l.alpha.shape(), &mut l.alpha.iter()));
    }
    let mut card = card.clone();
    if let Some(e) = &model.experts {
        let (k, j) = e.log_pi.dim();
        let tensors: [(&str, Vec<usize>, Vec<f64>); 4] = [
            ("experts.var", vec![e.var.len()], e.var.clone()),
            (
                "experts.log_pi",
                vec![k, j],
                e.log_pi.iter().copied().collect(),
            ),
            (
                "experts.log_sigma",
                vec![e.log_sigma.len()],
                e.log_sigma.clone(),
            ),
            (
                "experts.weights",
                e.weights.shape().to_vec(),
                e.weights.iter().copied().collect(),
            ),
        ];
        for (name, shape, v) in tensors {
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            bufs.push((name.into(), shape, bytes, Dtype::F64));
        }
        card.insert(
            EXPERT_FILTERS_KEY.into(),
            e.filters
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let views = bufs
        .iter()
        .map(|(n, s, b, d)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PriorError::Weights {
            tensor: "*".into(),
            message: e.to_string(),
        })?;
    safetensors::serialize(views, Some(card)).map_err(|e| PriorError::Weights {
        tensor: "*".into(),
        message: e.to_string(),
    })
}

/// Loads a model and its card from safetensors bytes.
pub fn from_safetensors(bytes: &[u8]) -> Result<(Pyramid, HashMap<String, String>), PriorError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| PriorError::Weights {
        tensor: "header".into(),
        message: e.to_string(),
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| PriorError::Weights {
        tensor: "header".into(),
        message: e.to_string(),
    })?;
    let card = meta.metadata().clone().unwrap_or_default();
    let mut levels = Vec::new();
    while st.tensor(&format!("level{}.w1", levels.len())).is_ok() {
        levels.push(read_level(&st, levels.len())?);
    }
    if levels.is_empty() {
        return Err(PriorError::Weights {
            tensor: "level0.w1".into(),
            message: "missing: not a basin prior".into(),
        });
    }
    let experts = if st.tensor("experts.weights").is_ok() {
        Some(read_experts(&st, &card)?)
    } else {
        None
    };
    Ok((Pyramid { levels, experts }, card))
}

/// Card key listing the expert filters by name (see [`crate::experts::filter_bank`]).
pub const EXPERT_FILTERS_KEY: &str = "experts_filters";

fn read_experts(
    st: &SafeTensors<'_>,
    card: &HashMap<String, String>,
) -> Result<crate::experts::Experts, PriorError> {
    let bad = |t: &str, m: String| PriorError::Weights {
        tensor: t.into(),
        message: m,
    };
    let get = |name: &str, ndim: usize| read_tensor(st, name, ndim, Dtype::F64);
    let bank = crate::experts::filter_bank();
    let names = card.get(EXPERT_FILTERS_KEY).ok_or_else(|| {
        bad(
            "header",
            format!("metadata `{EXPERT_FILTERS_KEY}` missing (names of the expert filters)"),
        )
    })?;
    let filters = names
        .split(',')
        .map(|n| {
            bank.iter()
                .find(|f| f.name == n)
                .cloned()
                .ok_or_else(|| bad("header", format!("unknown expert filter `{n}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (_, var) = get("experts.var", 1)?;
    let (sp, lp) = get("experts.log_pi", 2)?;
    let (_, log_sigma) = get("experts.log_sigma", 1)?;
    let (sw, wv) = get("experts.weights", 2)?;
    if sp != [filters.len(), var.len()] {
        return Err(bad(
            "experts.log_pi",
            format!(
                "shape {sp:?}, expected [K, J] = [{}, {}]",
                filters.len(),
                var.len()
            ),
        ));
    }
    if sw != [log_sigma.len(), filters.len() + 1] || log_sigma.is_empty() {
        return Err(bad(
            "experts.weights",
            format!(
                "shape {sw:?}, expected [T, K + 1] = [{}, {}]",
                log_sigma.len(),
                filters.len() + 1
            ),
        ));
    }
    if var.iter().any(|&v| v <= 0.0) {
        return Err(bad("experts.var", "variances must be positive".into()));
    }
    if log_sigma.windows(2).any(|p| p[1] <= p[0]) {
        return Err(bad("experts.log_sigma", "must increase".into()));
    }
    Ok(crate::experts::Experts {
        filters,
        var,
        log_pi: ndarray::Array2::from_shape_vec((sp[0], sp[1]), lp)
            .map_err(|e| bad("experts.log_pi", e.to_string()))?,
        log_sigma,
        weights: ndarray::Array2::from_shape_vec((sw[0], sw[1]), wv)
            .map_err(|e| bad("experts.weights", e.to_string()))?,
    })
}

/// Tensor `name` with `ndim` axes stored as `dtype` (F32 or F64), as float64 values, checked
/// finite; errors name the tensor.
fn read_tensor(
    st: &SafeTensors<'_>,
    name: &str,
    ndim: usize,
    dtype: Dtype,
) -> Result<(Vec<usize>, Vec<f64>), PriorError> {
    let bad = |m: String| PriorError::Weights {
        tensor: name.into(),
        message: m,
    };
    let t = st.tensor(name).map_err(|e| bad(e.to_string()))?;
    if t.dtype() != dtype {
        return Err(bad(format!("dtype {:?}, expected {dtype:?}", t.dtype())));
    }
    if t.shape().len() != ndim {
        return Err(bad(format!("shape {:?}, expected {ndim} axes", t.shape())));
    }
    let v: Vec<f64> = if dtype == Dtype::F64 {
        t.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    } else {
        t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    };
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad("contains NaN or infinite values".into()));
    }
    Ok((t.shape().to_vec(), v))
}

fn read_level(st: &SafeTensors<'_>, level: usize) -> Result<EnergyModel, PriorError> {
    let get = |short: &str, ndim: usize| {
        read_tensor(st, &format!("level{level}.{short}"), ndim, Dtype::F32)
    };
    let shape_err = |name: &str, m: String| PriorError::Weights {
        tensor: format!("level{level}.{name}"),
        message: m,
    };
    let (s, v) = get("w1", 4)?;
    let w1 = Array4::from_shape_vec((s[0], s[1], s[2], s[3]), v)
        .map_err(|e| shape_err("w1", e.to_string()))?;
    let (s, v) = get("w2", 4)?;
    let w2 = Array4::from_shape_vec((s[0], s[1], s[2], s[3]), v)
        .map_err(|e| shape_err("w2", e.to_string()))?;
    let vec1 = |name: &str| get(name, 1).map(|(_, v)| Array1::from(v));
    let m = EnergyModel {
        w1,
        b1: vec1("b1")?,
        a1: vec1("a1")?,
        w2,
        b2: vec1("b2")?,
        alpha: vec1("alpha")?,
    };
    let (c1, cin, k1, k1b) = m.w1.dim();
    let (c2, c1b, k2, k2b) = m.w2.dim();
    let checks = [
        (
            "w1",
            cin == 2 && k1 == k1b && k1 % 2 == 1,
            "must be [C1, 2, K, K] with odd K",
        ),
        (
            "w2",
            c1b == c1 && k2 == k2b && k2 % 2 == 1,
            "must be [C2, C1, K, K] with odd K",
        ),
        ("b1", m.b1.len() == c1, "must have C1 entries"),
        ("a1", m.a1.len() == c1, "must have C1 entries"),
        ("b2", m.b2.len() == c2, "must have C2 entries"),
        ("alpha", m.alpha.len() == c2, "must have C2 entries"),
    ];
    for (name, ok, what) in checks {
        if !ok {
            return Err(shape_err(name, what.into()));
        }
    }
    Ok(m)
}
