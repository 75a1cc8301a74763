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
    let views = bufs
        .iter()
        .map(|(n, s, b, d)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PriorError::Weights {
            tensor: "*".into(),
            message: e.to_string(),
        })?;
    safetensors::serialize(views, Some(card.clone())).map_err(|e| PriorError::Weights {
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
    Ok((Pyramid { levels }, card))
}

fn read_level(st: &SafeTensors<'_>, level: usize) -> Result<EnergyModel, PriorError> {
    let get = |short: &str, ndim: usize| -> Result<(Vec<usize>, Vec<f64>), PriorError> {
        let name = format!("level{level}.{short}");
        let bad = |m: String| PriorError::Weights {
            tensor: name.clone(),
            message: m,
        };
        let t = st.tensor(&name).map_err(|e| bad(e.to_string()))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("dtype {:?}, expected F32", t.dtype())));
        }
        if t.shape().len() != ndim {
            return Err(bad(format!("shape {:?}, expected {ndim} axes", t.shape())));
        }
        let v: Vec<f64> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad("contains NaN or infinite values".into()));
        }
        Ok((t.shape().to_vec(), v))
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
