//! `basin serve` over the MRD streaming protocol (issue 20), with the Python `ismrmrd` package
//! (PyPI 1.15.0, `target/pyenv`) as the independent peer: its `ProtocolSerializer` streams files
//! to the server and its `ProtocolDeserializer` reads what comes back. The images must equal
//! `basin recon`'s for the same file and protocol (NMSE < 1e-6, CPU path) with the same image
//! headers; each slice's image must come back before the next slice is sent; four clients at
//! once; hostile messages get a TEXT naming the problem and a close, a client that vanishes
//! mid-scan is let go, and the server still answers a valid client afterwards; fifty sequential connections leave resident memory
//! bounded; `basin send` writes what it receives as ISMRMRD images.

use basin_benches::prior_validation::MNI152;
use basin_tests::{basin_bin, basin_ok, generate_shepp_logan, phantom, small_phantom, venv_python};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

fn py(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the ismrmrd venv's python");
    assert!(
        out.status.success(),
        "python ismrmrd client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A `basin serve` child on 127.0.0.1 and a free port, serving `connections` connections; its
/// log lines are collected.
struct Served {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(connections: usize, extra: &[&str]) -> Served {
        let mut child = Command::new(basin_bin())
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--backend",
                "cpu",
                "--connections",
                &connections.to_string(),
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start basin serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("a first log line").unwrap();
        let port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in '{first}'"));
        let log = Arc::new(Mutex::new(vec![first]));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Served { child, port, log }
    }

    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    /// Waits for the server to exit after its connections; its status and log.
    fn finish(mut self) -> (bool, Vec<String>) {
        for _ in 0..600 {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return (st.success(), self.log.lock().unwrap().clone());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!(
            "basin serve did not exit after its connections:\n{}",
            self.log.lock().unwrap().join("\n")
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer: streams FILE to the server with ProtocolSerializer (CONFIG_FILE, the XML header,
/// the acquisitions, CLOSE) from CLIENTS threads at once, reads the replies with
/// ProtocolDeserializer, and compares each client's images with the ISMRMRD images of REF
/// (`basin recon`'s output, read by ismrmrd.Dataset). After each LAST_IN_SLICE it waits for that
/// slice's image before sending on ("streamed": every slice came back during the scan; with
/// interleaved calibration, after the slice's last repetition). An
/// optional ROUNDS repeats that, one round after the other.
const PEER: &str = r#"
import sys, json, socket, threading, time, h5py, ismrmrd, numpy as np
from ismrmrd.serialization import ProtocolSerializer, ProtocolDeserializer, ConfigFile
host, port, config, path, ref, nclients = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])

def load(path):
    d = ismrmrd.Dataset(path, 'dataset', create_if_needed=False)
    xml = d.read_xml_header()
    acqs = [d.read_acquisition(i) for i in range(d.number_of_acquisitions())]
    d.close()
    return ismrmrd.xsd.CreateFromDocument(xml), acqs

hdr, acqs = load(path)
pi = hdr.encoding[0].parallelImaging
mode = getattr(pi.calibrationMode, 'value', pi.calibrationMode) if pi is not None else None
interleaved = str(mode).lower() == 'interleaved'
reps = hdr.encoding[0].encodingLimits.repetition.maximum + 1 if hdr.encoding[0].encodingLimits.repetition else 1
with h5py.File(ref, 'r') as h:
    groups = sorted(k for k in h['dataset'].keys() if k.startswith('image'))
d = ismrmrd.Dataset(ref, 'dataset', create_if_needed=False)
refs = [d.read_image(g, i) for g in groups for i in range(d.number_of_images(g))]
d.close()
key = lambda im: (im.image_series_index, im.slice, im.contrast, im.repetition)
refs.sort(key=key)

def client(result):
    s = socket.create_connection((host, port))
    rf, wf = s.makefile('rb'), s.makefile('wb')
    images, texts, arrived = [], [], threading.Condition()
    def reader():
        try:
            for m in ProtocolDeserializer(rf).deserialize():
                with arrived:
                    if isinstance(m, ismrmrd.Image):
                        images.append((time.time(), m))
                    elif isinstance(m, str):
                        texts.append(m)
                    arrived.notify_all()
            result['closed'] = True
        except EOFError:
            result['closed'] = False
    t = threading.Thread(target=reader)
    t.start()
    ser = ProtocolSerializer(wf)
    ser.serialize(ConfigFile(config))
    ser.serialize(hdr)
    slices, streamed, latency = 0, True, []
    for a in acqs:
        ser.serialize(a)
        if a.flags & (1 << 7) and not a.flags & (1 << 18):  # LAST_IN_SLICE, not noise
            wf.flush()
            sent = time.time()
            slices += 1
            if interleaved and a.idx.repetition < reps - 1:
                continue  # its calibration needs the slice's later repetitions
            with arrived:
                ok = arrived.wait_for(lambda: len(images) >= slices, timeout=300)
            streamed = streamed and ok
            if ok:
                latency.append(images[slices - 1][0] - sent)
    ser.close()
    t.join(600)
    s.close()
    got = sorted((m for _, m in images), key=key)
    nmse, mism = [], []
    fields = ['matrix_size', 'field_of_view', 'position', 'read_dir', 'phase_dir', 'slice_dir',
              'slice', 'contrast', 'repetition', 'image_series_index', 'image_index', 'image_type']
    for g, r in zip(got, refs):
        a, b = g.data.astype(np.float64), r.data.astype(np.float64)
        nmse.append(float(np.sum((a - b) ** 2) / np.sum(b ** 2)) if a.shape == b.shape else 1e9)
        for f in fields:
            x, y = getattr(g, f), getattr(r, f)
            x = [float(v) for v in x] if hasattr(x, '__len__') else float(x)
            y = [float(v) for v in y] if hasattr(y, '__len__') else float(y)
            if np.max(np.abs(np.subtract(x, y))) > 1e-5:
                mism.append(f + ': ' + str(x) + ' vs ' + str(y))
        # The window is the slice's in a stream (the volume is not known yet), the volume's in a file.
        gm, rm = dict(g.meta), dict(r.meta)
        for k in ('WindowCenter', 'WindowWidth'):
            if k not in gm or k not in rm:
                mism.append('meta: no ' + k)
            gm.pop(k, None); rm.pop(k, None)
        if gm != rm:
            mism.append('meta: ' + str(gm) + ' vs ' + str(rm))
    result.update(images=len(got), texts=texts, nmse=max(nmse, default=1e9), mismatches=mism,
                  streamed=streamed, slices=slices, latency_ms=[1000 * l for l in latency],
                  meta=dict(got[0].meta) if got else {})

rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 1
results = []
for _ in range(rounds):
    rs = [dict() for _ in range(nclients)]
    threads = [threading.Thread(target=client, args=(r,)) for r in rs]
    for t in threads: t.start()
    for t in threads: t.join()
    results += rs
print(json.dumps({'reference_images': len(refs), 'clients': results}))
"#;

fn peer(
    port: u16,
    config: &str,
    file: &Path,
    reference: &Path,
    clients: usize,
) -> serde_json::Value {
    peer_rounds(port, config, file, reference, clients, 1)
}

fn peer_rounds(
    port: u16,
    config: &str,
    file: &Path,
    reference: &Path,
    clients: usize,
    rounds: usize,
) -> serde_json::Value {
    py(
        PEER,
        &[
            "127.0.0.1",
            &port.to_string(),
            config,
            file.to_str().unwrap(),
            reference.to_str().unwrap(),
            &clients.to_string(),
            &rounds.to_string(),
        ],
    )
}

fn check_peer(name: &str, v: &serde_json::Value, clients: usize) {
    eprintln!("{name}: {v}");
    let n = v["reference_images"].as_u64().unwrap();
    assert!(n >= 1, "{name}: basin recon wrote no images");
    let cs = v["clients"].as_array().unwrap();
    assert_eq!(cs.len(), clients);
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(c["closed"], true, "{name} client {i}: no CLOSE: {c}");
        assert_eq!(
            c["images"].as_u64().unwrap(),
            n,
            "{name} client {i}: image count: {c}"
        );
        let nmse = c["nmse"].as_f64().unwrap();
        assert!(nmse < 1e-6, "{name} client {i}: NMSE {nmse:.2e} ≥ 1e-6");
        assert!(
            c["mismatches"].as_array().unwrap().is_empty(),
            "{name} client {i}: image headers differ from basin recon's: {c}"
        );
        assert_eq!(
            c["streamed"], true,
            "{name} client {i}: a slice's image did not come back before the next slice was sent"
        );
        assert_eq!(
            c["slices"].as_u64().unwrap(),
            n,
            "{name}: LAST_IN_SLICE count"
        );
        assert!(
            !c["texts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().contains("error")),
            "{name} client {i}: {c}"
        );
        let meta = &c["meta"];
        assert_eq!(meta["DataRole"], "Image");
        let history = meta["ImageProcessingHistory"].to_string();
        assert!(
            history.contains("basin") && history.contains("protocol"),
            "{name}: ImageProcessingHistory {history}"
        );
        for k in ["WindowCenter", "WindowWidth", "SequenceDescription"] {
            assert!(meta.get(k).is_some(), "{name}: no {k} in {meta}");
        }
    }
}

fn recon_reference(file: &Path, protocol: &str, out: &Path) {
    basin_ok(&[
        "recon",
        file.to_str().unwrap(),
        "-p",
        protocol,
        "--backend",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ]);
}

#[test]
fn python_ismrmrd_peer_gets_basin_recons_images_streamed_back() {
    let dir = tempfile::tempdir().unwrap();
    // A realistic multi-slice acquisition (MNI152, never trained on: birdcage coils, correlated
    // noise with a noise scan, 4× equispaced), the ISMRMRD generator's Shepp–Logan and a small
    // phantom through the default EBM protocol.
    let mni = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(MNI152);
    assert!(mni.is_file(), ".ci/install-deps fetches MNI152");
    let realistic = dir.path().join("mni.h5");
    basin_ok(&[
        "phantom",
        "--from",
        mni.to_str().unwrap(),
        "--slices",
        "88:91",
        "--accel",
        "4",
        "--seed",
        "5",
        "-o",
        realistic.to_str().unwrap(),
    ]);
    let generated = dir.path().join("gen.h5");
    generate_shepp_logan(&generated, 64, 4, 2, 0.05);
    let small = small_phantom(dir.path(), "small.h5");
    let cases = [
        ("mni-sense", &realistic, "sense", 1),
        ("generator-l1", &generated, "cs-l1-wavelet", 1),
        ("small-ebm", &small, "brain-2d-ebm", 1),
        ("small-ebm-4-clients", &small, "brain-2d-ebm", 4),
    ];
    let total: usize = cases.iter().map(|c| c.3).sum();
    let server = Served::start(total, &["--max-connections", "4"]);
    for (name, file, protocol, clients) in cases {
        let reference = dir.path().join(format!("{name}_ref.h5"));
        recon_reference(file, protocol, &reference);
        let v = peer(server.port, protocol, file, &reference, clients);
        check_peer(name, &v, clients);
    }
    let (ok, log) = server.finish();
    assert!(ok, "basin serve failed:\n{}", log.join("\n"));
    // One log line per connection, with its timings.
    let lines: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("connection "))
        .collect();
    assert_eq!(lines.len(), total, "{log:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("first image after") && !l.contains("ended")),
        "{log:?}"
    );
}

/// Hostile or malformed streams, each on its own connection; the reply is read with
/// ProtocolDeserializer: every text, and whether a CLOSE ended it.
const HOSTILE: &str = r#"
import sys, json, socket, struct, ismrmrd
from ismrmrd.serialization import ProtocolSerializer, ProtocolDeserializer, ConfigFile
host, port, good, other = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def load(path):
    d = ismrmrd.Dataset(path, 'dataset', create_if_needed=False)
    xml = d.read_xml_header()
    acqs = [d.read_acquisition(i) for i in range(d.number_of_acquisitions())]
    d.close()
    return xml.decode() if isinstance(xml, bytes) else xml, acqs

xml, acqs = load(good)
_, other_acqs = load(other)
config = b'\x01\x00' + b'sense'.ljust(1024, b'\x00')
def header(x):
    b = x.encode()
    return struct.pack('<HI', 3, len(b)) + b
def acq_bytes(a):
    out = []
    a.serialize_into(out.append)
    return struct.pack('<H', 1008) + b''.join(out)

cases = {
    'unknown_id': (struct.pack('<H', 999), False),
    'truncated': (struct.pack('<H', 5) + struct.pack('<I', 100) + b'only part', True),
    'huge_length': (struct.pack('<HI', 2, 0xFFFFFFF0) + b'x' * 64, False),
    'bad_xml': (config + header('<ismrmrdHeader><encoding>'), False),
    'path_as_config': (b'\x01\x00' + b'../../../etc/passwd'.ljust(1024, b'\x00'), False),
    'acquisition_first': (acq_bytes(acqs[1]), False),
    'inconsistent': (config + header(xml) + b''.join(acq_bytes(a) for a in acqs[1:5] + other_acqs[1:3]), False),
}
# A client that vanishes mid-scan: config, header and a few acquisitions, then the socket is
# closed without CLOSE (the server frees the connection; nothing to read).
s = socket.create_connection((host, port))
s.sendall(config + header(xml) + b''.join(acq_bytes(a) for a in acqs[:6]))
s.close()
out = {}
for name, (data, half_close) in cases.items():
    s = socket.create_connection((host, port))
    s.settimeout(60)
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    texts, closed = [], False
    try:
        for m in ProtocolDeserializer(s.makefile('rb')).deserialize():
            if isinstance(m, str):
                texts.append(m)
        closed = True
    except (EOFError, OSError) as e:
        texts.append('client: ' + repr(e))
    s.close()
    out[name] = {'texts': texts, 'closed': closed}
print(json.dumps(out))
"#;

#[test]
fn hostile_messages_get_a_text_and_a_close_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let small = small_phantom(dir.path(), "small.h5");
    let generated = dir.path().join("gen.h5");
    generate_shepp_logan(&generated, 64, 4, 2, 0.05);
    let expect = [
        ("unknown_id", "unknown message id 999"),
        ("truncated", "truncated"),
        ("huge_length", "more than the limit"),
        ("bad_xml", "XML header"),
        ("path_as_config", "no such protocol"),
        ("acquisition_first", "before the config"),
        ("inconsistent", "acquisitions inconsistent"),
    ];
    // The hostile cases, a client that vanishes mid-scan, then a valid client.
    let server = Served::start(expect.len() + 2, &["--idle-timeout", "30"]);
    let v = py(
        HOSTILE,
        &[
            "127.0.0.1",
            &server.port.to_string(),
            small.to_str().unwrap(),
            generated.to_str().unwrap(),
        ],
    );
    eprintln!("{v}");
    for (case, needle) in expect {
        let c = &v[case];
        assert_eq!(c["closed"], true, "{case}: no CLOSE after the error: {c}");
        let texts = c["texts"].as_array().unwrap();
        assert!(
            texts.iter().any(|t| {
                let t = t.as_str().unwrap();
                t.starts_with("basin: error") && t.contains(needle)
            }),
            "{case}: no error text naming '{needle}': {c}"
        );
    }
    // The server still answers a valid client, and its images are right.
    let reference = dir.path().join("ref.h5");
    recon_reference(&small, "sense", &reference);
    let ok = peer(server.port, "sense", &small, &reference, 1);
    check_peer("after hostile", &ok, 1);
    let (status, log) = server.finish();
    assert!(status, "basin serve failed:\n{}", log.join("\n"));
    assert_eq!(
        log.iter().filter(|l| l.contains(", ended: ")).count(),
        expect.len() + 1,
        "one log line per failed or vanished connection, saying why: {log:?}"
    );
}

/// Fifty sequential connections of an 8-coil 128² acquisition (1 MiB of k-space each): resident
/// memory after fifty is within 24 MiB of its value after ten (a connection that kept its data
/// would add 40 MiB).
#[test]
fn fifty_sequential_connections_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let f = phantom(
        dir.path(),
        "p128.h5",
        &[
            "--matrix",
            "128",
            "--coils",
            "8",
            "--accel",
            "2",
            "--center-fraction",
            "0.1",
        ],
    );
    let reference = dir.path().join("ref.h5");
    recon_reference(&f, "zero-filled", &reference);
    let server = Served::start(50, &[]);
    let run = |n: usize| {
        let v = peer_rounds(server.port, "zero-filled", &f, &reference, 1, n);
        let cs = v["clients"].as_array().unwrap();
        assert_eq!(cs.len(), n);
        for c in cs {
            assert!(c["nmse"].as_f64().unwrap() < 1e-6, "{c}");
            assert_eq!(c["closed"], true, "{c}");
        }
    };
    run(10);
    let after10 = server.rss_kib();
    run(39);
    let after49 = server.rss_kib();
    run(1);
    let (ok, log) = server.finish();
    assert!(ok, "{}", log.join("\n"));
    eprintln!("resident memory: {after10} KiB after 10 connections, {after49} KiB after 49");
    assert!(
        after49 <= after10 + 24 * 1024,
        "resident memory grew from {after10} KiB to {after49} KiB over 39 connections"
    );
}

/// SIGTERM while a client is mid-scan: the slice being reconstructed is sent, the client is
/// told which incomplete slice is not reconstructed, gets a CLOSE, and the server exits 0.
#[test]
fn sigterm_finishes_the_slice_in_flight_and_exits_cleanly() {
    use basin_mrd::stream::{read_message, write_message, Limits, Message};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let f = phantom(dir.path(), "p.h5", &["--matrix", "64", "--coils", "4"]);
    let (xml, _, acqs) = basin_mrd::io::read_ismrmrd_with_xml(&f, "dataset").unwrap();
    let server = Served::start(1000, &[]);
    let s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let mut w = std::io::BufWriter::new(s.try_clone().unwrap());
    let mut r = std::io::BufReader::new(s);
    let limits = Limits::default();
    write_message(&mut w, &Message::ConfigFile("sense".into())).unwrap();
    write_message(&mut w, &Message::Header(xml)).unwrap();
    // Slice 0 complete (its last acquisition flagged), then half of the same lines again as a
    // second slice that never completes.
    for a in &acqs {
        write_message(&mut w, &Message::Acquisition(Box::new(a.clone()))).unwrap();
    }
    for a in acqs.iter().skip(1).take(acqs.len() / 2) {
        let mut a = a.clone();
        a.head.idx.slice = 1;
        a.head.flags &= !(1 << 7);
        write_message(&mut w, &Message::Acquisition(Box::new(a))).unwrap();
    }
    w.flush().unwrap();
    match read_message(&mut r, &limits).unwrap() {
        Message::Image(im) => assert_eq!(im.head.slice, 0),
        m => panic!("expected slice 0's image, got {m:?}"),
    }
    let st = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut texts = Vec::new();
    loop {
        match read_message(&mut r, &limits) {
            Ok(Message::Text(t)) => texts.push(t),
            Ok(Message::Close) => break,
            Ok(Message::Image(im)) => panic!("an image of incomplete slice {}", im.head.slice),
            Ok(m) => panic!("unexpected {m:?}"),
            Err(e) => panic!("no CLOSE after SIGTERM: {e}; texts {texts:?}"),
        }
    }
    assert!(
        texts
            .iter()
            .any(|t| t.contains("stopping") && t.contains("slice 1")),
        "{texts:?}"
    );
    let (ok, log) = server.finish();
    assert!(ok, "exit status after SIGTERM:\n{}", log.join("\n"));
    assert!(
        log.iter()
            .any(|l| l.contains("stopped after 1 connections")),
        "{log:?}"
    );
}

/// A protocol whose `[output]` asks for 16-bit pixels, the energy map and the posterior SD
/// (4 samples): `basin send` receives three series, equal to `basin recon --samples 4
/// --energy-map --uncertainty` of the same file (read by the Python ismrmrd package and
/// nibabel): the 16-bit image within its quantisation, the maps to NMSE < 1e-6.
#[test]
fn output_section_sends_ushort_pixels_and_the_maps_as_extra_series() {
    let dir = tempfile::tempdir().unwrap();
    let small = small_phantom(dir.path(), "small.h5");
    let protocols = dir.path().join("protocols");
    std::fs::create_dir(&protocols).unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocols/brain-2d-ebm.toml"),
    )
    .unwrap()
    .replace("name = \"brain-2d-ebm\"", "name = \"ebm-maps\"");
    let toml = protocols.join("ebm-maps.toml");
    std::fs::write(
        &toml,
        format!("{shipped}\n[output]\npixels = \"ushort\"\nenergy_map = true\nuncertainty_samples = 4\n"),
    )
    .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (reference, energy, sd) = (
        dir.path().join("ref.h5"),
        dir.path().join("energy.nii"),
        dir.path().join("sd.nii"),
    );
    basin_ok(&[
        "recon",
        &s(&small),
        "-p",
        &s(&toml),
        "--backend",
        "cpu",
        "--samples",
        "4",
        "--energy-map",
        &s(&energy),
        "--uncertainty",
        &s(&sd),
        "-o",
        &s(&reference),
    ]);
    let server = Served::start(1, &["--protocols", &s(&protocols)]);
    let got = dir.path().join("got.h5");
    basin_ok(&[
        "send",
        &s(&small),
        "--port",
        &server.port.to_string(),
        "-c",
        "ebm-maps",
        "-o",
        &s(&got),
    ]);
    let (ok, log) = server.finish();
    assert!(ok, "{}", log.join("\n"));
    // Debian's Python (h5py, nibabel; MetaAttributes parsed with ElementTree).
    let out = basin_tests::python(
        r#"
import sys, json, h5py, numpy as np, nibabel as nib, xml.etree.ElementTree as ET
got, ref, energy, sd = sys.argv[1:5]
def series(f):
    out = {}
    with h5py.File(f, 'r') as h:
        for k in sorted(h['dataset'].keys()):
            if k.startswith('image'):
                g = h['dataset'][k]
                meta = {}
                for m in ET.fromstring(bytes(g['attributes'][0]).decode() if g['attributes'].dtype.kind != 'O' else g['attributes'][0]).findall('meta'):
                    meta[m.find('name').text] = m.find('value').text
                out[k] = (np.asarray(g['data'][0]).squeeze(), meta, g['data'].dtype)
    return out
g, r = series(got), series(ref)
nmse = lambda a, b: float(np.sum((a - b) ** 2) / np.sum(b ** 2))
img, meta, dtype = g['image_1']
scale = float(meta['BasinScale'])
ref_img = list(r.values())[0][0].astype(np.float64)
nii = lambda p: np.asarray(nib.load(p).dataobj, np.float64)[:, :, 0].T
print(json.dumps({
    'series': sorted(g.keys()),
    'roles': [g[k][1]['DataRole'] for k in sorted(g.keys())],
    'ushort': str(dtype),
    'image_max_error': float(np.abs(img * scale - ref_img).max() / ref_img.max()),
    'energy_nmse': nmse(g['image_2'][0].astype(np.float64), nii(energy)),
    'sd_nmse': nmse(g['image_3'][0].astype(np.float64), nii(sd)),
}))
"#,
        &[&s(&got), &s(&reference), &s(&energy), &s(&sd)],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    eprintln!("{v}");
    assert_eq!(
        v["series"],
        serde_json::json!(["image_1", "image_2", "image_3"])
    );
    assert_eq!(
        v["roles"],
        serde_json::json!(["Image", "Quantitative", "Quantitative"])
    );
    assert_eq!(v["ushort"], "uint16");
    // 12 bits: half a step of max/4095.
    let e = v["image_max_error"].as_f64().unwrap();
    assert!(
        e <= 0.5 / 4095.0 + 1e-6,
        "16-bit image off by {e} of its maximum"
    );
    for k in ["energy_nmse", "sd_nmse"] {
        let n = v[k].as_f64().unwrap();
        assert!(n < 1e-6, "{k} = {n:.2e}");
    }
}
