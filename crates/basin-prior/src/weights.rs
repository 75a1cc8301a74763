//! Model weights in safetensors: tensors `w1`, `b1`, `a1`, `w2`, `b2`, `alpha` as float32, and
//! the model card (architecture, σ range, recipe, seed, data provenance, validation metrics) as
//! string metadata. Loading checks names, dtypes, shapes and finiteness, naming the tensor at fault.

use crate::model::EnergyModel;
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
    model: &EnergyModel,
    card: &HashMap<String, String>,
) -> Result<Vec<u8>, PriorError> {
    let bufs: Vec<(&str, Vec<usize>, Vec<u8>)> = vec![
        (
            "w1",
            model.w1.shape().to_vec(),
            f32_bytes(model.w1.iter().copied()),
        ),
        (
            "b1",
            model.b1.shape().to_vec(),
            f32_bytes(model.b1.iter().copied()),
        ),
        (
            "a1",
            model.a1.shape().to_vec(),
            f32_bytes(model.a1.iter().copied()),
        ),
        (
            "w2",
            model.w2.shape().to_vec(),
            f32_bytes(model.w2.iter().copied()),
        ),
        (
            "b2",
            model.b2.shape().to_vec(),
            f32_bytes(model.b2.iter().copied()),
        ),
        (
            "alpha",
            model.alpha.shape().to_vec(),
            f32_bytes(model.alpha.iter().copied()),
        ),
    ];
    let views = bufs
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.to_string(), v)))
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
pub fn from_safetensors(
    bytes: &[u8],
) -> Result<(EnergyModel, HashMap<String, String>), PriorError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| PriorError::Weights {
        tensor: "header".into(),
        message: e.to_string(),
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| PriorError::Weights {
        tensor: "header".into(),
        message: e.to_string(),
    })?;
    let card = meta.metadata().clone().unwrap_or_default();
    let get = |name: &str, ndim: usize| -> Result<(Vec<usize>, Vec<f64>), PriorError> {
        let bad = |m: String| PriorError::Weights {
            tensor: name.into(),
            message: m,
        };
        let t = st.tensor(name).map_err(|e| bad(e.to_string()))?;
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
        tensor: name.into(),
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
    Ok((m, card))
}
