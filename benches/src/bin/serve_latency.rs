//! `serve-latency FILE.h5 [PROTOCOL ...] [--backend cpu|gpu|auto]`: how long after a slice's
//! last acquisition its image leaves `basin serve` (issue 20: within one slice's reconstruction
//! time + 50 ms). A server on 127.0.0.1 (the library's `Server`, as `basin serve` runs it) and a
//! client that streams FILE like a scanner: the config, the XML header, the noise scans, then
//! slice after slice, each slice's acquisitions written and flushed before the clock starts, and
//! the next slice sent only once the image of this one is back. Per protocol it prints the
//! median and largest latency over the slices, the server's own reconstruction time per slice
//! (its connection report: reconstruction seconds / images) and the difference. The first
//! connection (prior loaded and device opened) is run and reported apart as a warm-up.

use basin_mrd::stream::{read_message, write_message, Limits, Message};
use basin_recon::pipeline::Pipeline;
use basin_server::{ConnectionReport, Server, ServerOptions};
use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// Streams the file once; latencies in seconds, one per slice.
fn stream(
    addr: std::net::SocketAddr,
    protocol: &str,
    xml: &str,
    acqs: &[basin_mrd::Acquisition],
) -> Vec<f64> {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| fail(format!("connect: {e}")));
    s.set_nodelay(true).ok();
    let mut r = BufReader::new(s.try_clone().expect("clone the socket"));
    let mut w = BufWriter::new(s);
    let limits = Limits::default();
    let send = |m: Message, w: &mut BufWriter<TcpStream>| {
        write_message(w, &m).unwrap_or_else(|e| fail(format!("send: {e}")));
    };
    send(Message::ConfigFile(protocol.into()), &mut w);
    send(Message::Header(xml.into()), &mut w);
    let mut latencies = Vec::new();
    for a in acqs {
        let last = a.head.is_flag_set(basin_mrd::flags::LAST_IN_SLICE)
            && !a.head.is_flag_set(basin_mrd::flags::IS_NOISE_MEASUREMENT);
        send(Message::Acquisition(Box::new(a.clone())), &mut w);
        if last {
            w.flush().unwrap_or_else(|e| fail(format!("send: {e}")));
            let t0 = Instant::now();
            loop {
                match read_message(&mut r, &limits) {
                    Ok(Message::Image(_)) => break,
                    Ok(Message::Text(t)) if t.contains("error") => fail(t),
                    Ok(Message::Close) => fail("the server closed early".into()),
                    Ok(_) => {}
                    Err(e) => fail(format!("receive: {e}")),
                }
            }
            latencies.push(t0.elapsed().as_secs_f64());
        }
    }
    send(Message::Close, &mut w);
    w.flush().ok();
    while let Ok(m) = read_message(&mut r, &limits) {
        if matches!(m, Message::Close) {
            break;
        }
    }
    latencies
}

fn main() {
    let mut file = None;
    let mut protocols = Vec::new();
    let mut backend = basin_gpu::Backend::Cpu;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--backend" {
            let v = args.next().unwrap_or_default();
            backend = v
                .parse()
                .unwrap_or_else(|e| fail(format!("--backend: {e}")));
        } else if file.is_none() {
            file = Some(PathBuf::from(a));
        } else {
            protocols.push(a);
        }
    }
    let Some(file) = file else {
        fail("usage: serve-latency FILE.h5 [PROTOCOL ...] [--backend cpu|gpu|auto]".into())
    };
    if protocols.is_empty() {
        protocols = vec!["sense".into(), "brain-2d-ebm".into()];
    }
    let (xml, _, acqs) = basin_mrd::io::read_ismrmrd_with_xml(&file, "dataset")
        .unwrap_or_else(|e| fail(e.to_string()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let reports: Arc<Mutex<Vec<ConnectionReport>>> = Arc::default();
    let sink = reports.clone();
    let runs = 2 * protocols.len();
    let server = Server::new(
        listener,
        Arc::new(Pipeline::new(backend)),
        ServerOptions {
            max_accepts: Some(runs),
            ..Default::default()
        },
    )
    .on_connection(move |r| sink.lock().unwrap().push(r.clone()));
    let addr = server.local_addr().expect("address");
    let handle = std::thread::spawn(move || server.run());
    println!(
        "{}: {} acquisitions; backend {backend:?}",
        file.display(),
        acqs.len()
    );
    println!("| protocol | run | slices | latency median (ms) | latency max (ms) | server reconstruction per slice (ms) | median − reconstruction (ms) |");
    println!("|---|---|---|---|---|---|---|");
    for p in &protocols {
        for run in ["warm-up", "measured"] {
            let mut lat = stream(addr, p, &xml, &acqs);
            // The report arrives when the server's connection thread ends.
            let report = loop {
                if let Some(r) = reports.lock().unwrap().pop() {
                    break r;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            if let Some(e) = report.error {
                fail(format!("{p}: {e}"));
            }
            lat.sort_by(f64::total_cmp);
            let median = lat[lat.len() / 2] * 1e3;
            let max = lat[lat.len() - 1] * 1e3;
            let recon = report.recon_s / report.images.max(1) as f64 * 1e3;
            println!(
                "| {p} | {run} | {} | {median:.1} | {max:.1} | {recon:.1} | {:+.1} |",
                lat.len(),
                median - recon
            );
        }
    }
    let _ = handle.join();
}
