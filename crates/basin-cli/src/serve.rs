//! `basin serve` and `basin send`: the MRD streaming protocol, server and client, as thin
//! drivers of `basin-server` (which drives the library pipeline).

use crate::exit;
use anyhow::{Context, Result};
use basin_recon::pipeline::Pipeline;
use basin_server::client::{send, Config};
use basin_server::{Server, ServerOptions};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Arguments of `basin serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. 127.0.0.1 serves this machine only; 0.0.0.0 every interface
    /// (the data are not encrypted: use a private network or a tunnel).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port (9002 is the FIRE / python-ismrmrd-server default).
    #[arg(long, default_value_t = 9002)]
    pub port: u16,
    /// Directory of protocol TOML files a client may name (`NAME.toml`) besides the built-ins;
    /// a client can never name a path.
    #[arg(long, value_name = "DIR")]
    pub protocols: Option<PathBuf>,
    /// Connections served at once; more are told the server is busy and closed.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_connections: usize,
    /// Close a connection after this many seconds without a message.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// Refuse (with a TEXT, closing that connection) a slice whose estimated reconstruction
    /// memory is larger than this (e.g. 4G), as `basin recon --max-memory`; per connection.
    #[arg(long, value_name = "SIZE", value_parser = basin_recon::memory::parse_size)]
    pub max_memory: Option<u64>,
    /// Exit after this many connections (default: serve until SIGINT/SIGTERM).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Where the EBM solver's iterations run (as `basin recon --backend`); the device and
    /// the prior are set up once and shared by every connection.
    #[arg(long, default_value = "auto", value_name = "auto|cpu|gpu")]
    pub backend: basin_recon::Backend,
}

/// Set while serving: SIGINT/SIGTERM then stop the server gracefully instead of exiting.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Asks a running server to stop (finish the slices in flight, then exit); false when no
/// server runs in this process.
pub fn request_stop() -> bool {
    match STOP.get() {
        Some(s) => {
            s.store(true, Ordering::SeqCst);
            true
        }
        None => false,
    }
}

/// Runs `basin serve`.
pub fn run_serve(a: ServeArgs) -> Result<()> {
    if a.max_connections == 0 {
        return Err(exit::usage("--max-connections must be at least 1"));
    }
    if let Some(d) = &a.protocols {
        if !d.is_dir() {
            return Err(exit::usage(format!(
                "{}: --protocols is not a directory",
                d.display()
            )));
        }
    }
    let listener = std::net::TcpListener::bind((a.host.as_str(), a.port))
        .map_err(|e| exit::usage(format!("cannot listen on {}:{}: {e}", a.host, a.port)))?;
    let options = ServerOptions {
        protocols_dir: a.protocols.clone(),
        max_connections: a.max_connections,
        idle_timeout: std::time::Duration::from_secs(a.idle_timeout.max(1)),
        max_accepts: a.connections,
        max_memory: a.max_memory,
        ..Default::default()
    };
    let server = Server::new(listener, Arc::new(Pipeline::new(a.backend)), options)
        .on_connection(|r| {
            let first = r
                .first_image_s
                .map_or_else(|| "-".to_string(), |s| format!("{s:.3} s"));
            eprintln!(
                "connection {}: protocol {}, {} acquisitions, {} images, first image after {first}, reconstruction {:.2} s, total {:.2} s{}",
                r.peer,
                if r.protocol.is_empty() { "-" } else { &r.protocol },
                r.acquisitions,
                r.images,
                r.recon_s,
                r.total_s,
                r.error.as_ref().map(|e| format!(", ended: {e}")).unwrap_or_default()
            );
        });
    let addr = server.local_addr()?;
    let _ = STOP.set(server.stop_flag());
    eprintln!("basin serve: listening on {addr}");
    let n = server.run().context("serving")?;
    eprintln!("basin serve: stopped after {n} connections");
    Ok(())
}

/// Arguments of `basin send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// ISMRMRD k-space file to stream.
    pub input: PathBuf,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 9002)]
    pub port: u16,
    /// Configuration: a protocol name the server knows (sent as CONFIG_FILE), or the path of a
    /// protocol TOML file (its text is sent as CONFIG_TEXT).
    #[arg(short, long, default_value = basin_recon::protocol::DEFAULT_PROTOCOL)]
    pub config: String,
    /// Where to write the images received (ISMRMRD HDF5, one series per image_series_index).
    #[arg(short, long)]
    pub output: PathBuf,
    /// ISMRMRD group holding `xml` and `data`.
    #[arg(long, default_value = "dataset")]
    pub dataset: String,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Runs `basin send`.
pub fn run_send(a: SendArgs) -> Result<()> {
    if !a.input.is_file() {
        return Err(exit::input(format!("{}: no such file", a.input.display())));
    }
    basin_export::check_outputs(&[a.input.as_path()], &[a.output.as_path()], a.force)?;
    let config = if a.config.ends_with(".toml") || a.config.contains('/') {
        let text = std::fs::read_to_string(&a.config)
            .map_err(|e| exit::usage(format!("{}: {e}", a.config)))?;
        Config::Text(text)
    } else {
        Config::Name(a.config.clone())
    };
    let (xml, _, acqs) = basin_mrd::io::read_ismrmrd_with_xml(&a.input, &a.dataset)?;
    let got = send((a.host.as_str(), a.port), &config, &xml, &acqs)
        .map_err(|e| exit::input(format!("{}:{}: {e}", a.host, a.port)))?;
    for t in &got.texts {
        eprintln!("server: {t}");
    }
    if got.images.is_empty() {
        return Err(exit::input("the server sent no images"));
    }
    basin_export::atomic_write(&a.output, a.force, |t| {
        basin_server::write_images(t, &got.images).map_err(|e| e.to_string())
    })?;
    eprintln!(
        "wrote {} ({} images from {}:{})",
        a.output.display(),
        got.images.len(),
        a.host,
        a.port
    );
    if got.texts.iter().any(|t| t.contains("error")) {
        return Err(exit::input("the server reported an error"));
    }
    Ok(())
}
