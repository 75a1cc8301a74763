//! The MRD streaming protocol (python-ismrmrd-server's "MRD Streaming Format", the `ismrmrd`
//! package's `ProtocolSerializer`/`ProtocolDeserializer`, Gadgetron's): a sequence of messages,
//! each a little-endian u16 id and a payload. Headers are packed exactly as the ISMRMRD C
//! structs (acquisition 340 bytes, image 198, waveform 40 with natural alignment).
//!
//! Reading is bounded: every length declared by the peer is checked against [`Limits`] before
//! anything is allocated, so a hostile or corrupt stream gets an error, never a huge allocation
//! or a panic.

use crate::acquisition::{Acquisition, AcquisitionHeader, EncodingCounters};
use crate::image::{
    ImageHeader, DATATYPE_CXFLOAT, DATATYPE_FLOAT, DATATYPE_SHORT, DATATYPE_USHORT,
};
use basin_core::C32;
use ndarray::Array2;
use std::io::{Read, Write};

/// Message ids.
pub mod id {
    /// Name of a configuration (1024 bytes, NUL padded).
    pub const CONFIG_FILE: u16 = 1;
    /// Configuration text (u32 length + UTF-8).
    pub const CONFIG_TEXT: u16 = 2;
    /// ISMRMRD XML header (u32 length + UTF-8).
    pub const HEADER: u16 = 3;
    /// End of the stream.
    pub const CLOSE: u16 = 4;
    /// Free text (u32 length + UTF-8): logs, errors.
    pub const TEXT: u16 = 5;
    /// An acquisition.
    pub const ACQUISITION: u16 = 1008;
    /// An image.
    pub const IMAGE: u16 = 1022;
    /// A physiological waveform.
    pub const WAVEFORM: u16 = 1026;
}

/// Size of a CONFIG_FILE payload.
pub const CONFIG_FILE_SIZE: usize = 1024;
/// Packed size of the acquisition header.
pub const ACQUISITION_HEADER_SIZE: usize = 340;
/// Packed size of the image header.
pub const IMAGE_HEADER_SIZE: usize = 198;
/// Size of the waveform header (natural alignment, as the C struct).
pub const WAVEFORM_HEADER_SIZE: usize = 40;

/// Bounds on what one message may declare.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest text, configuration or XML header (bytes).
    pub max_text: usize,
    /// Largest payload of one acquisition, image or waveform (bytes).
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text: 16 << 20,
            max_payload: 256 << 20,
        }
    }
}

/// Errors of the stream codec.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The connection failed or ended inside a message.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A message id this protocol does not know.
    #[error("unknown message id {0}")]
    UnknownId(u16),
    /// A declared length past the limits.
    #[error("{what} declares {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Which message.
        what: &'static str,
        /// Declared size.
        bytes: u128,
        /// The limit.
        limit: usize,
    },
    /// Text that is not UTF-8.
    #[error("{0}: not UTF-8 text")]
    NotUtf8(&'static str),
    /// The stream ended inside a message (a truncated frame).
    #[error("message {id} is truncated: {detail}")]
    Truncated {
        /// The message id.
        id: u16,
        /// How far it got.
        detail: String,
    },
    /// An image of a pixel type basin does not read.
    #[error("image data type {0} is not supported (float 5, complex float 7, ushort 1, short 2)")]
    DataType(u16),
}

/// An image on the wire: header, MetaAttributes XML and pixels `[channel, z, y, x]` flattened,
/// x fastest.
#[derive(Clone, Debug)]
pub struct StreamImage {
    /// The header (`data_type`, `matrix_size`, `channels` describe `pixels`).
    pub head: ImageHeader,
    /// MetaAttributes XML.
    pub attributes: String,
    /// The pixels.
    pub pixels: ImagePixels,
}

/// Pixel values of a streamed image.
#[derive(Clone, Debug, PartialEq)]
pub enum ImagePixels {
    /// float32 (data type 5).
    Float(Vec<f32>),
    /// complex float32 (7).
    Complex(Vec<C32>),
    /// unsigned 16-bit (1).
    UShort(Vec<u16>),
    /// signed 16-bit (2).
    Short(Vec<i16>),
}

impl ImagePixels {
    /// The ISMRMRD data type.
    pub fn data_type(&self) -> u16 {
        match self {
            ImagePixels::UShort(_) => DATATYPE_USHORT,
            ImagePixels::Short(_) => DATATYPE_SHORT,
            ImagePixels::Float(_) => DATATYPE_FLOAT,
            ImagePixels::Complex(_) => DATATYPE_CXFLOAT,
        }
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ImagePixels::Float(v) => v.len(),
            ImagePixels::Complex(v) => v.len(),
            ImagePixels::UShort(v) => v.len(),
            ImagePixels::Short(v) => v.len(),
        }
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values as float32 magnitudes.
    pub fn magnitude(&self) -> Vec<f32> {
        match self {
            ImagePixels::Float(v) => v.clone(),
            ImagePixels::Complex(v) => v.iter().map(|c| c.norm()).collect(),
            ImagePixels::UShort(v) => v.iter().map(|&x| x as f32).collect(),
            ImagePixels::Short(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// One message.
#[derive(Clone, Debug)]
pub enum Message {
    /// CONFIG_FILE: a configuration's name.
    ConfigFile(String),
    /// CONFIG_TEXT: a configuration's text.
    ConfigText(String),
    /// HEADER: the ISMRMRD XML header.
    Header(String),
    /// CLOSE.
    Close,
    /// TEXT.
    Text(String),
    /// ACQUISITION.
    Acquisition(Box<Acquisition>),
    /// IMAGE.
    Image(Box<StreamImage>),
    /// WAVEFORM: its id and number of samples (the samples are read and dropped).
    Waveform {
        /// waveform_id.
        waveform_id: u16,
        /// Samples per channel.
        samples: u16,
    },
}

/// Little-endian reader of a fixed header.
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[self.at..self.at + N]);
        self.at += N;
        a
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn f32s<const N: usize>(&mut self) -> [f32; N] {
        std::array::from_fn(|_| self.f32())
    }
    fn u16s<const N: usize>(&mut self) -> [u16; N] {
        std::array::from_fn(|_| self.u16())
    }
    fn u32s<const N: usize>(&mut self) -> [u32; N] {
        std::array::from_fn(|_| self.u32())
    }
    fn i32s<const N: usize>(&mut self) -> [i32; N] {
        std::array::from_fn(|_| self.i32())
    }
}

/// Decodes a packed acquisition header.
pub fn acquisition_header_from_bytes(b: &[u8; ACQUISITION_HEADER_SIZE]) -> AcquisitionHeader {
    let mut f = Fields { b, at: 0 };
    AcquisitionHeader {
        version: f.u16(),
        flags: f.u64(),
        measurement_uid: f.u32(),
        scan_counter: f.u32(),
        acquisition_time_stamp: f.u32(),
        physiology_time_stamp: f.u32s(),
        number_of_samples: f.u16(),
        available_channels: f.u16(),
        active_channels: f.u16(),
        channel_mask: std::array::from_fn(|_| f.u64()),
        discard_pre: f.u16(),
        discard_post: f.u16(),
        center_sample: f.u16(),
        encoding_space_ref: f.u16(),
        trajectory_dimensions: f.u16(),
        sample_time_us: f.f32(),
        position: f.f32s(),
        read_dir: f.f32s(),
        phase_dir: f.f32s(),
        slice_dir: f.f32s(),
        patient_table_position: f.f32s(),
        idx: EncodingCounters {
            kspace_encode_step_1: f.u16(),
            kspace_encode_step_2: f.u16(),
            average: f.u16(),
            slice: f.u16(),
            contrast: f.u16(),
            phase: f.u16(),
            repetition: f.u16(),
            set: f.u16(),
            segment: f.u16(),
            user: f.u16s(),
        },
        user_int: f.i32s(),
        user_float: f.f32s(),
    }
}

/// Encodes an acquisition header packed.
pub fn acquisition_header_to_bytes(h: &AcquisitionHeader) -> Vec<u8> {
    let mut v = Vec::with_capacity(ACQUISITION_HEADER_SIZE);
    v.extend(h.version.to_le_bytes());
    v.extend(h.flags.to_le_bytes());
    v.extend(h.measurement_uid.to_le_bytes());
    v.extend(h.scan_counter.to_le_bytes());
    v.extend(h.acquisition_time_stamp.to_le_bytes());
    h.physiology_time_stamp
        .iter()
        .for_each(|x| v.extend(x.to_le_bytes()));
    v.extend(h.number_of_samples.to_le_bytes());
    v.extend(h.available_channels.to_le_bytes());
    v.extend(h.active_channels.to_le_bytes());
    h.channel_mask
        .iter()
        .for_each(|x| v.extend(x.to_le_bytes()));
    for x in [
        h.discard_pre,
        h.discard_post,
        h.center_sample,
        h.encoding_space_ref,
        h.trajectory_dimensions,
    ] {
        v.extend(x.to_le_bytes());
    }
    v.extend(h.sample_time_us.to_le_bytes());
    for a in [
        h.position,
        h.read_dir,
        h.phase_dir,
        h.slice_dir,
        h.patient_table_position,
    ] {
        a.iter().for_each(|x| v.extend(x.to_le_bytes()));
    }
    let i = &h.idx;
    for x in [
        i.kspace_encode_step_1,
        i.kspace_encode_step_2,
        i.average,
        i.slice,
        i.contrast,
        i.phase,
        i.repetition,
        i.set,
        i.segment,
    ] {
        v.extend(x.to_le_bytes());
    }
    i.user.iter().for_each(|x| v.extend(x.to_le_bytes()));
    h.user_int.iter().for_each(|x| v.extend(x.to_le_bytes()));
    h.user_float.iter().for_each(|x| v.extend(x.to_le_bytes()));
    v
}

/// Decodes a packed image header.
pub fn image_header_from_bytes(b: &[u8; IMAGE_HEADER_SIZE]) -> ImageHeader {
    let mut f = Fields { b, at: 0 };
    ImageHeader {
        version: f.u16(),
        data_type: f.u16(),
        flags: f.u64(),
        measurement_uid: f.u32(),
        matrix_size: f.u16s(),
        field_of_view: f.f32s(),
        channels: f.u16(),
        position: f.f32s(),
        read_dir: f.f32s(),
        phase_dir: f.f32s(),
        slice_dir: f.f32s(),
        patient_table_position: f.f32s(),
        average: f.u16(),
        slice: f.u16(),
        contrast: f.u16(),
        phase: f.u16(),
        repetition: f.u16(),
        set: f.u16(),
        acquisition_time_stamp: f.u32(),
        physiology_time_stamp: f.u32s(),
        image_type: f.u16(),
        image_index: f.u16(),
        image_series_index: f.u16(),
        user_int: f.i32s(),
        user_float: f.f32s(),
        attribute_string_len: f.u32(),
    }
}

/// Encodes an image header packed.
pub fn image_header_to_bytes(h: &ImageHeader) -> Vec<u8> {
    let mut v = Vec::with_capacity(IMAGE_HEADER_SIZE);
    v.extend(h.version.to_le_bytes());
    v.extend(h.data_type.to_le_bytes());
    v.extend(h.flags.to_le_bytes());
    v.extend(h.measurement_uid.to_le_bytes());
    h.matrix_size.iter().for_each(|x| v.extend(x.to_le_bytes()));
    h.field_of_view
        .iter()
        .for_each(|x| v.extend(x.to_le_bytes()));
    v.extend(h.channels.to_le_bytes());
    for a in [
        h.position,
        h.read_dir,
        h.phase_dir,
        h.slice_dir,
        h.patient_table_position,
    ] {
        a.iter().for_each(|x| v.extend(x.to_le_bytes()));
    }
    for x in [h.average, h.slice, h.contrast, h.phase, h.repetition, h.set] {
        v.extend(x.to_le_bytes());
    }
    v.extend(h.acquisition_time_stamp.to_le_bytes());
    h.physiology_time_stamp
        .iter()
        .for_each(|x| v.extend(x.to_le_bytes()));
    for x in [h.image_type, h.image_index, h.image_series_index] {
        v.extend(x.to_le_bytes());
    }
    h.user_int.iter().for_each(|x| v.extend(x.to_le_bytes()));
    h.user_float.iter().for_each(|x| v.extend(x.to_le_bytes()));
    v.extend(h.attribute_string_len.to_le_bytes());
    v
}

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N], StreamError> {
    let mut a = [0u8; N];
    r.read_exact(&mut a)?;
    Ok(a)
}

/// Reads exactly `n` bytes, growing the buffer as the data arrive (a declared length is not
/// allocated up front).
fn read_bytes(r: &mut impl Read, n: usize) -> Result<Vec<u8>, StreamError> {
    let mut v = Vec::new();
    let got = r.take(n as u64).read_to_end(&mut v)?;
    if got < n {
        return Err(StreamError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the stream ended {} bytes into a {n}-byte payload", got),
        )));
    }
    Ok(v)
}

fn checked(what: &'static str, bytes: u128, limit: usize) -> Result<usize, StreamError> {
    if bytes > limit as u128 {
        return Err(StreamError::TooLarge { what, bytes, limit });
    }
    Ok(bytes as usize)
}

fn read_text(
    r: &mut impl Read,
    what: &'static str,
    limits: &Limits,
) -> Result<String, StreamError> {
    let n = u32::from_le_bytes(read_array(r)?);
    let n = checked(what, n as u128, limits.max_text)?;
    let b = read_bytes(r, n)?;
    String::from_utf8(b).map_err(|_| StreamError::NotUtf8(what))
}

fn f32s(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Reads the next message. Lengths are checked against `limits` before they are read.
pub fn read_message(r: &mut impl Read, limits: &Limits) -> Result<Message, StreamError> {
    let msg = u16::from_le_bytes(read_array(r)?);
    read_body(msg, r, limits).map_err(|e| match e {
        StreamError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            StreamError::Truncated {
                id: msg,
                detail: io.to_string(),
            }
        }
        e => e,
    })
}

fn read_body(msg: u16, r: &mut impl Read, limits: &Limits) -> Result<Message, StreamError> {
    match msg {
        id::CONFIG_FILE => {
            let b = read_bytes(r, CONFIG_FILE_SIZE)?;
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            let s = std::str::from_utf8(&b[..end])
                .map_err(|_| StreamError::NotUtf8("config file name"))?;
            Ok(Message::ConfigFile(s.to_string()))
        }
        id::CONFIG_TEXT => Ok(Message::ConfigText(read_text(r, "config text", limits)?)),
        id::HEADER => Ok(Message::Header(read_text(r, "XML header", limits)?)),
        id::TEXT => Ok(Message::Text(read_text(r, "text", limits)?)),
        id::CLOSE => Ok(Message::Close),
        id::ACQUISITION => {
            let head = acquisition_header_from_bytes(&read_array(r)?);
            let ns = head.number_of_samples as u128;
            let traj = checked(
                "acquisition trajectory",
                ns * head.trajectory_dimensions as u128 * 4,
                limits.max_payload,
            )?;
            let data = checked(
                "acquisition data",
                ns * head.active_channels as u128 * 8,
                limits.max_payload,
            )?;
            let tb = read_bytes(r, traj)?;
            let db = read_bytes(r, data)?;
            let samples: Vec<C32> = f32s(&db)
                .collect::<Vec<_>>()
                .chunks_exact(2)
                .map(|c| C32::new(c[0], c[1]))
                .collect();
            let data = Array2::from_shape_vec(
                (
                    head.active_channels as usize,
                    head.number_of_samples as usize,
                ),
                samples,
            )
            .map_err(|e| StreamError::Io(std::io::Error::other(e.to_string())))?;
            Ok(Message::Acquisition(Box::new(Acquisition {
                head,
                traj: f32s(&tb).collect(),
                data,
            })))
        }
        id::IMAGE => {
            let head = image_header_from_bytes(&read_array(r)?);
            let alen = u64::from_le_bytes(read_array(r)?);
            let alen = checked("image attributes", alen as u128, limits.max_text)?;
            let ab = read_bytes(r, alen)?;
            let end = ab.iter().position(|&c| c == 0).unwrap_or(ab.len());
            let attributes = std::str::from_utf8(&ab[..end])
                .map_err(|_| StreamError::NotUtf8("image attributes"))?
                .to_string();
            let n = head.channels as u128
                * head
                    .matrix_size
                    .iter()
                    .map(|&m| m as u128)
                    .product::<u128>();
            let size = match head.data_type {
                DATATYPE_USHORT | DATATYPE_SHORT => 2,
                DATATYPE_FLOAT => 4,
                DATATYPE_CXFLOAT => 8,
                t => return Err(StreamError::DataType(t)),
            };
            let bytes = checked("image data", n * size, limits.max_payload)?;
            let b = read_bytes(r, bytes)?;
            let pixels = match head.data_type {
                DATATYPE_USHORT => ImagePixels::UShort(
                    b.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                ),
                DATATYPE_SHORT => ImagePixels::Short(
                    b.chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                ),
                DATATYPE_FLOAT => ImagePixels::Float(f32s(&b).collect()),
                _ => ImagePixels::Complex(
                    f32s(&b)
                        .collect::<Vec<_>>()
                        .chunks_exact(2)
                        .map(|c| C32::new(c[0], c[1]))
                        .collect(),
                ),
            };
            Ok(Message::Image(Box::new(StreamImage {
                head,
                attributes,
                pixels,
            })))
        }
        id::WAVEFORM => {
            let h: [u8; WAVEFORM_HEADER_SIZE] = read_array(r)?;
            // version u16 @0, flags u64 @8, measurement_uid @16, scan_counter @20,
            // time_stamp @24, number_of_samples u16 @28, channels u16 @30,
            // sample_time_us f32 @32, waveform_id u16 @36.
            let samples = u16::from_le_bytes([h[28], h[29]]);
            let channels = u16::from_le_bytes([h[30], h[31]]);
            let waveform_id = u16::from_le_bytes([h[36], h[37]]);
            let n = checked(
                "waveform data",
                samples as u128 * channels as u128 * 4,
                limits.max_payload,
            )?;
            std::io::copy(&mut r.take(n as u64), &mut std::io::sink()).and_then(|got| {
                if got < n as u64 {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a waveform",
                    ))
                } else {
                    Ok(())
                }
            })?;
            Ok(Message::Waveform {
                waveform_id,
                samples,
            })
        }
        other => Err(StreamError::UnknownId(other)),
    }
}

fn write_text(w: &mut impl Write, msg: u16, text: &str) -> std::io::Result<()> {
    w.write_all(&msg.to_le_bytes())?;
    w.write_all(&(text.len() as u32).to_le_bytes())?;
    w.write_all(text.as_bytes())
}

/// Writes one message.
pub fn write_message(w: &mut impl Write, m: &Message) -> std::io::Result<()> {
    match m {
        Message::ConfigFile(name) => {
            let b = name.as_bytes();
            if b.len() >= CONFIG_FILE_SIZE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("a config name is at most {} bytes", CONFIG_FILE_SIZE - 1),
                ));
            }
            let mut p = vec![0u8; CONFIG_FILE_SIZE];
            p[..b.len()].copy_from_slice(b);
            w.write_all(&id::CONFIG_FILE.to_le_bytes())?;
            w.write_all(&p)
        }
        Message::ConfigText(t) => write_text(w, id::CONFIG_TEXT, t),
        Message::Header(t) => write_text(w, id::HEADER, t),
        Message::Text(t) => write_text(w, id::TEXT, t),
        Message::Close => w.write_all(&id::CLOSE.to_le_bytes()),
        Message::Acquisition(a) => {
            let mut h = a.head;
            h.active_channels = a.data.shape()[0] as u16;
            h.number_of_samples = a.data.shape()[1] as u16;
            let mut v = id::ACQUISITION.to_le_bytes().to_vec();
            v.extend(acquisition_header_to_bytes(&h));
            a.traj.iter().for_each(|x| v.extend(x.to_le_bytes()));
            a.data.iter().for_each(|c| {
                v.extend(c.re.to_le_bytes());
                v.extend(c.im.to_le_bytes());
            });
            w.write_all(&v)
        }
        Message::Image(im) => {
            let mut h = im.head;
            h.data_type = im.pixels.data_type();
            h.attribute_string_len = im.attributes.len() as u32;
            let mut v = id::IMAGE.to_le_bytes().to_vec();
            v.extend(image_header_to_bytes(&h));
            v.extend((im.attributes.len() as u64).to_le_bytes());
            v.extend(im.attributes.as_bytes());
            match &im.pixels {
                ImagePixels::Float(p) => p.iter().for_each(|x| v.extend(x.to_le_bytes())),
                ImagePixels::Complex(p) => p.iter().for_each(|c| {
                    v.extend(c.re.to_le_bytes());
                    v.extend(c.im.to_le_bytes());
                }),
                ImagePixels::UShort(p) => p.iter().for_each(|x| v.extend(x.to_le_bytes())),
                ImagePixels::Short(p) => p.iter().for_each(|x| v.extend(x.to_le_bytes())),
            }
            w.write_all(&v)
        }
        Message::Waveform { .. } => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "basin does not send waveforms",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_the_c_sizes() {
        let mut h = AcquisitionHeader {
            version: 1,
            flags: 1 << 7,
            number_of_samples: 3,
            active_channels: 2,
            sample_time_us: 2.5,
            position: [1.0, -2.0, 3.5],
            ..Default::default()
        };
        h.idx.slice = 7;
        h.idx.user[7] = 9;
        h.user_float[7] = -1.25;
        let b = acquisition_header_to_bytes(&h);
        assert_eq!(b.len(), ACQUISITION_HEADER_SIZE);
        let back = acquisition_header_from_bytes(&b.clone().try_into().unwrap());
        assert_eq!(back, h);
        let im = ImageHeader {
            matrix_size: [4, 5, 1],
            image_index: 3,
            attribute_string_len: 11,
            user_float: [0.5; 8],
            ..Default::default()
        };
        let b = image_header_to_bytes(&im);
        assert_eq!(b.len(), IMAGE_HEADER_SIZE);
        assert_eq!(image_header_from_bytes(&b.try_into().unwrap()), im);
    }

    #[test]
    fn declared_lengths_past_the_limits_are_refused_before_reading() {
        let mut m = id::TEXT.to_le_bytes().to_vec();
        m.extend(u32::MAX.to_le_bytes());
        let e = read_message(&mut m.as_slice(), &Limits::default()).unwrap_err();
        assert!(matches!(e, StreamError::TooLarge { .. }), "{e}");
        let e = read_message(&mut [0xffu8, 0xff].as_slice(), &Limits::default()).unwrap_err();
        assert!(matches!(e, StreamError::UnknownId(65535)), "{e}");
    }
}
