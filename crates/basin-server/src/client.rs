//! The client side of the MRD streaming protocol (`basin send`): a configuration, the XML
//! header and the acquisitions of a file go out while the images come back on another thread
//! (the server sends images during the scan, so reading only after sending could deadlock on
//! full socket buffers).

use crate::SessionError;
use basin_mrd::stream::{read_message, write_message, Limits, Message, StreamError, StreamImage};
use basin_mrd::Acquisition;
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};

/// How the client names its configuration.
#[derive(Clone, Debug)]
pub enum Config {
    /// CONFIG_FILE: a protocol's name (built in, or in the server's protocol directory).
    Name(String),
    /// CONFIG_TEXT: a protocol's TOML text.
    Text(String),
}

/// What came back.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// The images, in the order they arrived.
    pub images: Vec<StreamImage>,
    /// TEXT messages (the server's warnings and errors).
    pub texts: Vec<String>,
    /// Whether the server closed with a CLOSE message.
    pub closed: bool,
}

/// Streams `acquisitions` with `xml` under `config` to the server at `addr`; returns what the
/// server sent back.
pub fn send(
    addr: impl ToSocketAddrs,
    config: &Config,
    xml: &str,
    acquisitions: &[Acquisition],
) -> Result<Received, SessionError> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true).ok();
    let rs = stream.try_clone()?;
    let reader = std::thread::spawn(move || -> Result<Received, StreamError> {
        let mut r = BufReader::new(rs);
        let mut got = Received::default();
        loop {
            match read_message(&mut r, &Limits::default()) {
                Ok(Message::Image(im)) => got.images.push(*im),
                Ok(Message::Text(t)) => got.texts.push(t),
                Ok(Message::Close) => {
                    got.closed = true;
                    return Ok(got);
                }
                Ok(_) => {}
                // The server closed without CLOSE: what arrived is what there is.
                Err(StreamError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(got)
                }
                Err(e) => return Err(e),
            }
        }
    });
    let sent = (|| -> std::io::Result<()> {
        let mut w = BufWriter::new(&stream);
        write_message(
            &mut w,
            &match config {
                Config::Name(n) => Message::ConfigFile(n.clone()),
                Config::Text(t) => Message::ConfigText(t.clone()),
            },
        )?;
        write_message(&mut w, &Message::Header(xml.to_string()))?;
        for a in acquisitions {
            write_message(&mut w, &Message::Acquisition(Box::new(a.clone())))?;
        }
        write_message(&mut w, &Message::Close)?;
        w.flush()
    })();
    // A server that refused part way closes the socket: its TEXT explains more than the
    // broken pipe, so the answer is read either way.
    let _ = stream.shutdown(Shutdown::Write);
    let got = reader
        .join()
        .map_err(|_| std::io::Error::other("the reading thread panicked"))??;
    if let Err(e) = sent {
        if got.texts.is_empty() {
            return Err(e.into());
        }
    }
    Ok(got)
}
