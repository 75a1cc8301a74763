#![warn(missing_docs)]
//! basin-server: reconstruction inside a scanner's pipeline over the MRD streaming protocol
//! (python-ismrmrd-server's "MRD Streaming Format"; FIRE / OpenRecon and Gadgetron clients),
//! and the matching client.
//!
//! One connection is one reconstruction: a configuration (a protocol's name, built in or in the
//! server's protocol directory, or a protocol's TOML text), the XML header, then acquisitions —
//! noise scans first — and images back as soon as each slice's data are complete
//! (`LAST_IN_SLICE`), while the scan goes on; then close. Every connection runs on its own
//! thread and shares the process's one [`Pipeline`] (device and prior set up once). A bad
//! message gets a TEXT message naming the problem and a close of that connection only.

use basin_core::C64;
use basin_mrd::stream::{read_message, write_message, Limits, Message, StreamError, StreamImage};
use basin_mrd::{Acquisition, BucketKey, IsmrmrdHeader};
use basin_recon::pipeline::Pipeline;
use basin_recon::{Protocol, ReconOptions};
use ndarray::Array2;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod client;
mod image;

/// Errors of one connection, the server's or the client's (each ends that connection only).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The stream could not be decoded.
    #[error("stream: {0}")]
    Stream(#[from] StreamError),
    /// A message out of order or inconsistent with the others.
    #[error("{0}")]
    Protocol(String),
    /// Reconstruction failed.
    #[error("reconstruction: {0}")]
    Recon(#[from] basin_recon::ReconError),
    /// The acquisitions do not assemble.
    #[error("acquisitions: {0}")]
    Mrd(#[from] basin_mrd::MrdError),
}

/// A connection that could not be made or broke (the client's side).
impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> Self {
        SessionError::Stream(StreamError::Io(e))
    }
}

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Where protocols named by CONFIG_FILE are looked for (`NAME.toml`) after the built-ins.
    pub protocols_dir: Option<PathBuf>,
    /// Connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// Bounds on one message.
    pub limits: Limits,
    /// Bytes of acquisitions one connection may hold while its slices are incomplete.
    pub max_connection_bytes: usize,
    /// A connection whose client sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Stop after this many connections (tests and one-shot use); None: until stopped.
    pub max_accepts: Option<usize>,
    /// A slice whose estimated reconstruction memory is past this is refused (per connection).
    pub max_memory: Option<u64>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            protocols_dir: None,
            max_connections: 8,
            limits: Limits::default(),
            max_connection_bytes: 4 << 30,
            idle_timeout: Duration::from_secs(300),
            max_accepts: None,
            max_memory: None,
        }
    }
}

/// What one connection did, for the server's log line.
#[derive(Clone, Debug, Default)]
pub struct ConnectionReport {
    /// The client.
    pub peer: String,
    /// The protocol used (empty when none was configured).
    pub protocol: String,
    /// Acquisitions received.
    pub acquisitions: usize,
    /// Images sent.
    pub images: usize,
    /// Seconds from the first message to the first image sent.
    pub first_image_s: Option<f64>,
    /// Seconds spent reconstructing.
    pub recon_s: f64,
    /// Seconds the connection lasted.
    pub total_s: f64,
    /// Why it ended early, if it did (also sent to the client as TEXT).
    pub error: Option<String>,
}

type Reporter = Arc<dyn Fn(&ConnectionReport) + Send + Sync>;

/// The server: a listener, the shared pipeline and the connections being served.
pub struct Server {
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    options: ServerOptions,
    stop: Arc<AtomicBool>,
    report: Reporter,
}

impl Server {
    /// A server on `listener` (e.g. `TcpListener::bind("127.0.0.1:9002")`).
    pub fn new(listener: TcpListener, pipeline: Arc<Pipeline>, options: ServerOptions) -> Self {
        Server {
            listener,
            pipeline,
            options,
            stop: Arc::new(AtomicBool::new(false)),
            report: Arc::new(|_| {}),
        }
    }

    /// Calls `f` when each connection ends.
    pub fn on_connection(mut self, f: impl Fn(&ConnectionReport) + Send + Sync + 'static) -> Self {
        self.report = Arc::new(f);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Setting this flag stops the server: no new connection is accepted, the connections
    /// being served stop reading, finish the slices they hold, send them and close.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Serves until stopped (or `max_accepts` connections); returns the number served.
    pub fn run(self) -> std::io::Result<usize> {
        self.listener.set_nonblocking(true)?;
        let active = Arc::new(AtomicUsize::new(0));
        let streams: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let next_id = AtomicU64::new(0);
        let mut served = 0usize;
        let mut threads = Vec::new();
        while !self.stop.load(Ordering::SeqCst)
            && self.options.max_accepts.is_none_or(|m| served < m)
        {
            let (stream, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            served += 1;
            stream.set_nonblocking(false)?;
            stream.set_nodelay(true).ok();
            stream
                .set_read_timeout(Some(self.options.idle_timeout))
                .ok();
            if active.load(Ordering::SeqCst) >= self.options.max_connections {
                let mut w = BufWriter::new(&stream);
                let _ = write_message(
                    &mut w,
                    &Message::Text(format!(
                        "basin: error: the server is busy ({} connections); try again later",
                        self.options.max_connections
                    )),
                )
                .and_then(|_| write_message(&mut w, &Message::Close))
                .and_then(|_| w.flush());
                (self.report)(&ConnectionReport {
                    peer: peer.to_string(),
                    error: Some("busy: refused".into()),
                    ..Default::default()
                });
                continue;
            }
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            if let Ok(c) = stream.try_clone() {
                lock(&streams).insert(id, c);
            }
            active.fetch_add(1, Ordering::SeqCst);
            let (pipeline, options, report, active, streams, stop) = (
                self.pipeline.clone(),
                self.options.clone(),
                self.report.clone(),
                active.clone(),
                streams.clone(),
                self.stop.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let r = serve_connection(stream, peer, &pipeline, &options, &stop);
                lock(&streams).remove(&id);
                active.fetch_sub(1, Ordering::SeqCst);
                report(&r);
            }));
            threads.retain(|t| !t.is_finished());
        }
        // After `max_accepts` connections the open ones are served to their end; once stopped,
        // they stop reading (what they hold is still reconstructed and sent).
        let mut stopping = false;
        while threads.iter().any(|t| !t.is_finished()) {
            if !stopping && self.stop.load(Ordering::SeqCst) {
                stopping = true;
                for s in lock(&streams).values() {
                    let _ = s.shutdown(Shutdown::Read);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(served)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The protocol a CONFIG_FILE names: a built-in, or `NAME.toml` in the protocol directory. A
/// name is never a path (a client must not make the server read its files).
pub fn protocol_named(name: &str, dir: Option<&Path>) -> Result<Protocol, SessionError> {
    let name = name.trim();
    let name = name.strip_suffix(".toml").unwrap_or(name);
    if let Some((n, text)) = basin_recon::protocol::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
    {
        return Ok(Protocol::from_toml(
            text,
            &format!("built-in protocol '{n}'"),
        )?);
    }
    let simple = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if simple {
        if let Some(d) = dir {
            let f = d.join(format!("{name}.toml"));
            if f.is_file() {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| SessionError::Protocol(format!("{}: {e}", f.display())))?;
                return Ok(Protocol::from_toml(&text, &f.display().to_string())?);
            }
        }
    }
    let names: Vec<&str> = basin_recon::protocol::BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect();
    Err(SessionError::Protocol(format!(
        "config '{name}': no such protocol (built-in: {}{})",
        names.join(", "),
        if dir.is_some() {
            ", or NAME.toml in the server's protocol directory"
        } else {
            ""
        }
    )))
}

/// One connection's state.
struct Session<'a> {
    pipeline: &'a Pipeline,
    options: &'a ServerOptions,
    protocol: Option<Protocol>,
    header: Option<IsmrmrdHeader>,
    noise: Vec<Acquisition>,
    pending: BTreeMap<BucketKey, Vec<Acquisition>>,
    held: usize,
    complete: Vec<BucketKey>,
    channels: Option<u16>,
    samples: Option<u16>,
    whitening: Option<Option<Array2<C64>>>,
    image_index: u16,
    warned: Vec<String>,
    report: ConnectionReport,
    started: Instant,
}

/// What an acquisition costs a connection to hold (its samples, trajectory and header).
fn held_bytes(a: &Acquisition) -> usize {
    a.data.len() * 8 + a.traj.len() * 4 + 340
}

fn key_of(a: &Acquisition) -> BucketKey {
    BucketKey {
        slice: a.head.idx.slice,
        contrast: a.head.idx.contrast,
        repetition: a.head.idx.repetition,
        set: a.head.idx.set,
    }
}

impl Session<'_> {
    fn handle(&mut self, m: Message, out: &mut impl Write) -> Result<bool, SessionError> {
        match m {
            Message::ConfigFile(name) => self.set_protocol(protocol_named(
                &name,
                self.options.protocols_dir.as_deref(),
            )?)?,
            Message::ConfigText(text) => {
                self.set_protocol(Protocol::from_toml(&text, "the client's config text")?)?
            }
            Message::Header(xml) => {
                if self.header.is_some() {
                    return Err(SessionError::Protocol("a second XML header".into()));
                }
                let h = IsmrmrdHeader::from_xml(&xml)
                    .map_err(|e| SessionError::Protocol(format!("invalid XML header: {e}")))?;
                self.header = Some(h);
            }
            Message::Acquisition(a) => {
                if self.protocol.is_none() || self.header.is_none() {
                    return Err(SessionError::Protocol(
                        "an acquisition before the config and the XML header".into(),
                    ));
                }
                self.report.acquisitions += 1;
                self.held += held_bytes(&a);
                if self.held > self.options.max_connection_bytes {
                    return Err(SessionError::Protocol(format!(
                        "the acquisitions of incomplete slices exceed {} bytes (is LAST_IN_SLICE never set?)",
                        self.options.max_connection_bytes
                    )));
                }
                self.check_shape(&a)?;
                if a.head.is_flag_set(basin_mrd::flags::IS_NOISE_MEASUREMENT) {
                    self.noise.push(*a);
                    return Ok(true);
                }
                let key = key_of(&a);
                let last_in_slice = a.head.is_flag_set(basin_mrd::flags::LAST_IN_SLICE);
                let last = a.head.is_flag_set(basin_mrd::flags::LAST_IN_MEASUREMENT);
                self.pending.entry(key).or_default().push(*a);
                if last {
                    self.flush_all(out)?;
                } else if last_in_slice {
                    self.slice_complete(key, out)?;
                }
            }
            Message::Waveform { .. } => {}
            Message::Text(t) => tracing::info!("client says: {t}"),
            Message::Image(_) => {
                tracing::info!("an image from the client is ignored (basin reconstructs k-space)")
            }
            Message::Close => {
                self.flush_all(out)?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every acquisition of a connection has the channels of the first, and every imaging
    /// acquisition its samples: caught on arrival, not when the slice completes.
    fn check_shape(&mut self, a: &Acquisition) -> Result<(), SessionError> {
        let n = self.report.acquisitions;
        let (c, s) = (a.head.active_channels, a.head.number_of_samples);
        if a.data.len() != c as usize * s as usize {
            return Err(SessionError::Protocol(format!(
                "acquisition {n} holds {} samples, not channels × samples = {c} × {s}",
                a.data.len()
            )));
        }
        let c0 = *self.channels.get_or_insert(c);
        if c != c0 {
            return Err(SessionError::Protocol(format!(
                "acquisitions inconsistent: acquisition {n} has {c} channels, the first had {c0}"
            )));
        }
        if !a.head.is_flag_set(basin_mrd::flags::IS_NOISE_MEASUREMENT) {
            let s0 = *self.samples.get_or_insert(s);
            if s != s0 {
                return Err(SessionError::Protocol(format!(
                    "acquisitions inconsistent: acquisition {n} has {s} samples, the first had {s0}"
                )));
            }
        }
        Ok(())
    }

    fn set_protocol(&mut self, p: Protocol) -> Result<(), SessionError> {
        if self.protocol.is_some() {
            return Err(SessionError::Protocol("a second config".into()));
        }
        self.report.protocol = p.name.clone();
        self.protocol = Some(p);
        Ok(())
    }

    fn flush_all(&mut self, out: &mut impl Write) -> Result<(), SessionError> {
        let keys: Vec<BucketKey> = self.pending.keys().copied().collect();
        if self.interleaved() {
            // The repetitions of a slice calibrate together: one group at a time.
            let mut groups: BTreeMap<(u16, u16, u16), Vec<BucketKey>> = BTreeMap::new();
            for k in keys {
                groups
                    .entry((k.slice, k.contrast, k.set))
                    .or_default()
                    .push(k);
            }
            for g in groups.values() {
                self.flush(g, out)?;
            }
            return Ok(());
        }
        for k in keys {
            self.flush(&[k], out)?;
        }
        Ok(())
    }

    /// The server is stopping: tells the client which incomplete slices are dropped.
    fn abandon(&mut self, out: &mut impl Write) {
        if self.pending.is_empty() {
            return;
        }
        let held: Vec<String> = self
            .pending
            .iter()
            .map(|(k, v)| format!("slice {} ({} acquisitions)", k.slice, v.len()))
            .collect();
        self.report.error = Some(format!(
            "stopped: {} incomplete slice(s) not reconstructed",
            held.len()
        ));
        let _ = write_message(
            out,
            &Message::Text(format!(
                "basin: warning: the server is stopping; incomplete, not reconstructed: {}",
                held.join(", ")
            )),
        );
        self.pending.clear();
    }

    /// Interleaved calibration (`parallelImaging.calibrationMode`): a slice's calibration data
    /// are the union of its repetitions, so its images wait for all of them.
    fn interleaved(&self) -> bool {
        self.header
            .as_ref()
            .and_then(|h| h.encoding.first())
            .and_then(|e| e.parallelImaging.as_ref())
            .and_then(|p| p.calibrationMode.as_deref())
            .is_some_and(|m| m.eq_ignore_ascii_case("interleaved"))
    }

    /// The bucket `key` is complete (LAST_IN_SLICE): reconstruct it now, or, with interleaved
    /// calibration, once every repetition of its slice is complete.
    fn slice_complete(&mut self, key: BucketKey, out: &mut impl Write) -> Result<(), SessionError> {
        if !self.interleaved() {
            return self.flush(&[key], out);
        }
        self.complete.push(key);
        let reps = self
            .header
            .as_ref()
            .and_then(|h| h.encoding.first())
            .and_then(|e| e.encodingLimits.repetition)
            .map(|l| l.maximum as usize + 1);
        let group: Vec<BucketKey> = self
            .complete
            .iter()
            .copied()
            .filter(|k| (k.slice, k.contrast, k.set) == (key.slice, key.contrast, key.set))
            .collect();
        if reps.is_some_and(|r| group.len() >= r) {
            self.complete.retain(|k| !group.contains(k));
            self.flush(&group, out)?;
        }
        Ok(())
    }

    /// Reconstructs the buckets `keys` (their data are complete) and sends their images.
    fn flush(&mut self, keys: &[BucketKey], out: &mut impl Write) -> Result<(), SessionError> {
        let mut acqs = Vec::new();
        for k in keys {
            acqs.extend(self.pending.remove(k).unwrap_or_default());
        }
        if acqs.is_empty() {
            return Ok(());
        }
        let (Some(protocol), Some(header)) = (&self.protocol, &self.header) else {
            return Ok(());
        };
        self.held = self.held.saturating_sub(acqs.iter().map(held_bytes).sum());
        let mut all = self.noise.clone();
        all.extend(acqs);
        let t0 = Instant::now();
        let kspace = basin_mrd::assemble(Path::new("<stream>"), header.clone(), &all)?;
        for w in &kspace.warnings {
            if !self.warned.contains(w) {
                self.warned.push(w.clone());
                write_message(out, &Message::Text(format!("basin: warning: {w}")))
                    .map_err(StreamError::from)?;
            }
        }
        if self.whitening.is_none() {
            self.whitening = Some(basin_recon::whitening_for(protocol, &kspace)?);
        }
        let whitening = self.whitening.as_ref().and_then(|w| w.as_ref());
        // As `basin recon --samples N --seed 1` for the protocol's uncertainty_samples.
        let options = ReconOptions {
            samples: protocol.output.uncertainty_samples,
            seed: 1,
            max_memory: self.options.max_memory,
            gpu_memory: None,
        };
        options.check_memory(protocol, &kspace)?;
        for b in &kspace.buckets {
            let r = self.pipeline.reconstruct_bucket(
                protocol,
                b,
                kspace.three_d,
                whitening,
                &options,
            )?;
            self.image_index = self.image_index.wrapping_add(1);
            let magnitude = r.image.mapv(|v| v.norm());
            let mut images = vec![image::to_stream_image(
                &r,
                &magnitude,
                image::Kind::Image,
                header,
                protocol,
                self.image_index,
            )];
            if protocol.output.energy_map {
                let e = self.pipeline.energy_map(&r.image)?;
                images.push(image::to_stream_image(
                    &r,
                    &e,
                    image::Kind::Energy,
                    header,
                    protocol,
                    self.image_index,
                ));
            }
            if let Some(sd) = &r.uncertainty {
                images.push(image::to_stream_image(
                    &r,
                    sd,
                    image::Kind::Uncertainty,
                    header,
                    protocol,
                    self.image_index,
                ));
            }
            for im in images {
                write_message(out, &Message::Image(Box::new(im))).map_err(StreamError::from)?;
                self.report.images += 1;
            }
            out.flush().map_err(StreamError::from)?;
            self.report
                .first_image_s
                .get_or_insert(self.started.elapsed().as_secs_f64());
        }
        self.report.recon_s += t0.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Serves one connection to its end; never panics on what the client sends.
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    pipeline: &Pipeline,
    options: &ServerOptions,
    stop: &AtomicBool,
) -> ConnectionReport {
    let started = Instant::now();
    let mut session = Session {
        pipeline,
        options,
        protocol: None,
        header: None,
        noise: Vec::new(),
        pending: BTreeMap::new(),
        held: 0,
        complete: Vec::new(),
        channels: None,
        samples: None,
        whitening: None,
        image_index: 0,
        warned: Vec::new(),
        report: ConnectionReport {
            peer: peer.to_string(),
            ..Default::default()
        },
        started,
    };
    let Ok(rs) = stream.try_clone() else {
        session.report.error = Some("cannot clone the socket".into());
        return session.report;
    };
    let mut reader = BufReader::new(rs);
    let mut out = BufWriter::new(&stream);
    let result: Result<(), SessionError> = (|| loop {
        let m = match read_message(&mut reader, &options.limits) {
            Ok(m) => m,
            // Stopping (the read side was shut down): the slice being reconstructed has been
            // sent; slices whose data are incomplete are not reconstructed (an image from part
            // of a slice's k-space could be mistaken for the real one), and the client is told.
            Err(_) if stop.load(Ordering::SeqCst) => {
                session.abandon(&mut out);
                return Ok(());
            }
            Err(StreamError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(SessionError::Protocol(format!(
                    "no message for {} s: closing the connection",
                    options.idle_timeout.as_secs()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if !session.handle(m, &mut out)? {
            return Ok(());
        }
    })();
    if let Err(e) = &result {
        let vanished = matches!(e, SessionError::Stream(StreamError::Io(_)));
        session.report.error = Some(e.to_string());
        if !vanished {
            let _ = write_message(&mut out, &Message::Text(format!("basin: error: {e}")));
        }
    }
    let _ = write_message(&mut out, &Message::Close).and_then(|_| out.flush());
    drop(out);
    let _ = stream.shutdown(Shutdown::Both);
    session.report.total_s = started.elapsed().as_secs_f64();
    session.report
}

/// The images of a stream, for tests and the client: decoded [`StreamImage`]s.
pub type Images = Vec<StreamImage>;

/// Writes streamed images to an ISMRMRD file: `/dataset/image_<series>` per image series (as
/// the ISMRMRD tools and python-ismrmrd-server's client do), magnitude float32 (complex images
/// keep their complex values), each with its header and MetaAttributes.
pub fn write_images(path: &Path, images: &[StreamImage]) -> Result<(), basin_mrd::MrdError> {
    use basin_mrd::image::{write_images as write_series, Pixels};
    let mut series: BTreeMap<u16, Vec<&StreamImage>> = BTreeMap::new();
    for im in images {
        series
            .entry(im.head.image_series_index)
            .or_default()
            .push(im);
    }
    let invalid = |message: String| basin_mrd::MrdError::Invalid {
        file: path.to_path_buf(),
        field: "images".into(),
        message,
    };
    for (s, ims) in series {
        let m = ims[0].head.matrix_size;
        let c = ims[0].head.channels;
        if ims
            .iter()
            .any(|i| i.head.matrix_size != m || i.head.channels != c)
        {
            return Err(invalid(format!("series {s} mixes image sizes")));
        }
        let shape = (
            ims.len(),
            c as usize,
            m[2] as usize,
            m[1] as usize,
            m[0] as usize,
        );
        use basin_mrd::stream::ImagePixels;
        let complex = ims
            .iter()
            .all(|i| matches!(i.pixels, ImagePixels::Complex(_)));
        let ushort = ims
            .iter()
            .all(|i| matches!(i.pixels, ImagePixels::UShort(_)));
        let pixels = if ushort {
            let v: Vec<u16> = ims
                .iter()
                .flat_map(|i| match &i.pixels {
                    ImagePixels::UShort(p) => p.clone(),
                    _ => Vec::new(),
                })
                .collect();
            Pixels::UShort(
                ndarray::Array5::from_shape_vec(shape, v).map_err(|e| invalid(e.to_string()))?,
            )
        } else if complex {
            let v: Vec<basin_core::C32> = ims
                .iter()
                .flat_map(|i| match &i.pixels {
                    ImagePixels::Complex(p) => p.clone(),
                    _ => Vec::new(),
                })
                .collect();
            Pixels::Complex(
                ndarray::Array5::from_shape_vec(shape, v).map_err(|e| invalid(e.to_string()))?,
            )
        } else {
            let v: Vec<f32> = ims.iter().flat_map(|i| i.pixels.magnitude()).collect();
            Pixels::Magnitude(
                ndarray::Array5::from_shape_vec(shape, v).map_err(|e| invalid(e.to_string()))?,
            )
        };
        let heads: Vec<_> = ims.iter().map(|i| i.head).collect();
        let attrs: Vec<String> = ims.iter().map(|i| i.attributes.clone()).collect();
        write_series(
            path,
            "dataset",
            &format!("image_{s}"),
            &heads,
            &pixels,
            &attrs,
        )?;
    }
    Ok(())
}
