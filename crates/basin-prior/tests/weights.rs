//! Weights round-trip through safetensors, are read the same by an independent parser (numpy on
//! the documented layout: 8-byte header length, JSON header, little-endian data), and broken
//! files give errors that name the tensor.

use basin_prior::weights::{from_safetensors, to_safetensors};
use basin_prior::Pyramid;
use std::collections::HashMap;
use std::process::Command;

#[test]
fn round_trip_and_independent_reader() {
    let m = Pyramid::random(2, 5, 5, 3, 3, 9);
    let card = HashMap::from([
        ("architecture".to_string(), "conv2-softplus".to_string()),
        ("seed".to_string(), "9".to_string()),
    ]);
    let bytes = to_safetensors(&m, &card).unwrap();
    let (back, card2) = from_safetensors(&bytes).unwrap();
    assert_eq!(card2, card);
    for (x, y) in m.params().into_iter().zip(back.params()) {
        assert_eq!(x as f32, y as f32);
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.safetensors");
    std::fs::write(&f, &bytes).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            r#"
import sys, json, struct, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
t = h['level1.w1']; s, e = t['data_offsets']
w1 = np.frombuffer(b[8 + n + s:8 + n + e], '<f4').reshape(t['shape'])
print(t['dtype'], list(w1.shape), repr(float(w1[2, 1, 3, 4])), h['__metadata__']['seed'])
"#,
        )
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(v[0], "F32");
    assert_eq!(v[1..5].join(" "), "[5, 2, 5, 5]");
    assert_eq!(
        v[5].parse::<f32>().unwrap(),
        m.levels[1].w1[[2, 1, 3, 4]] as f32
    );
    assert_eq!(v[6], "9");
}

#[test]
fn broken_weights_give_errors_naming_the_tensor() {
    let m = Pyramid::random(2, 4, 3, 2, 3, 1);
    let bytes = to_safetensors(&m, &HashMap::new()).unwrap();
    assert!(from_safetensors(&bytes[..bytes.len() / 2]).is_err());
    assert!(from_safetensors(b"not safetensors").is_err());
    let mut bad = m.clone();
    bad.levels[1].alpha = ndarray::Array1::zeros(5);
    let e = from_safetensors(&to_safetensors(&bad, &HashMap::new()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("level1.alpha"), "{e}");
    let mut nan = m.clone();
    nan.levels[0].b2[0] = f64::NAN;
    let e = from_safetensors(&to_safetensors(&nan, &HashMap::new()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("level0.b2") && e.contains("NaN"), "{e}");
}
