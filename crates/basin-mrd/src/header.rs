//! The ISMRMRD XML header (`ismrmrdHeader`, schema version 1.x) as serde types, parsed and
//! written with quick-xml. Only what basin uses is modelled; unknown elements are ignored.

#![allow(non_snake_case)]

use serde::{Deserialize, Serialize};

fn is_none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

/// The whole header.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename = "ismrmrdHeader")]
pub struct IsmrmrdHeader {
    /// XML namespace (written as `xmlns`).
    #[serde(rename = "@xmlns", default, skip_serializing_if = "is_none")]
    pub xmlns: Option<String>,
    /// Schema version.
    #[serde(default, skip_serializing_if = "is_none")]
    pub version: Option<i64>,
    /// Patient information.
    #[serde(default, skip_serializing_if = "is_none")]
    pub subjectInformation: Option<SubjectInformation>,
    /// Study information.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyInformation: Option<StudyInformation>,
    /// Series / measurement information.
    #[serde(default, skip_serializing_if = "is_none")]
    pub measurementInformation: Option<MeasurementInformation>,
    /// Scanner and coil information.
    #[serde(default, skip_serializing_if = "is_none")]
    pub acquisitionSystemInformation: Option<AcquisitionSystemInformation>,
    /// Field strength as a frequency.
    #[serde(default, skip_serializing_if = "is_none")]
    pub experimentalConditions: Option<ExperimentalConditions>,
    /// One or more encodings (basin reconstructs encoding 0).
    #[serde(default)]
    pub encoding: Vec<Encoding>,
    /// TR, TE, TI, flip angle.
    #[serde(default, skip_serializing_if = "is_none")]
    pub sequenceParameters: Option<SequenceParameters>,
}

/// `subjectInformation`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SubjectInformation {
    /// Patient name.
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientName: Option<String>,
    /// Weight in kg.
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientWeight_kg: Option<f64>,
    /// Height in m.
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientHeight_m: Option<f64>,
    /// Patient ID.
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientID: Option<String>,
    /// Birth date (xs:date).
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientBirthdate: Option<String>,
    /// M, F or O.
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientGender: Option<String>,
}

/// `studyInformation`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StudyInformation {
    /// Study date.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyDate: Option<String>,
    /// Study time.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyTime: Option<String>,
    /// Study ID.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyID: Option<String>,
    /// Accession number.
    #[serde(default, skip_serializing_if = "is_none")]
    pub accessionNumber: Option<i64>,
    /// Referring physician.
    #[serde(default, skip_serializing_if = "is_none")]
    pub referringPhysicianName: Option<String>,
    /// Study description.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyDescription: Option<String>,
    /// Study instance UID.
    #[serde(default, skip_serializing_if = "is_none")]
    pub studyInstanceUID: Option<String>,
    /// Body part.
    #[serde(default, skip_serializing_if = "is_none")]
    pub bodyPartExamined: Option<String>,
}

/// `measurementInformation`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MeasurementInformation {
    /// Measurement ID.
    #[serde(default, skip_serializing_if = "is_none")]
    pub measurementID: Option<String>,
    /// Series date.
    #[serde(default, skip_serializing_if = "is_none")]
    pub seriesDate: Option<String>,
    /// Series time.
    #[serde(default, skip_serializing_if = "is_none")]
    pub seriesTime: Option<String>,
    /// Patient position (HFS, FFS, …).
    #[serde(default, skip_serializing_if = "is_none")]
    pub patientPosition: Option<String>,
    /// Initial series number.
    #[serde(default, skip_serializing_if = "is_none")]
    pub initialSeriesNumber: Option<i64>,
    /// Protocol name.
    #[serde(default, skip_serializing_if = "is_none")]
    pub protocolName: Option<String>,
    /// Sequence name.
    #[serde(default, skip_serializing_if = "is_none")]
    pub sequenceName: Option<String>,
    /// Series description.
    #[serde(default, skip_serializing_if = "is_none")]
    pub seriesDescription: Option<String>,
    /// Frame of reference UID.
    #[serde(default, skip_serializing_if = "is_none")]
    pub frameOfReferenceUID: Option<String>,
}

/// `acquisitionSystemInformation`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AcquisitionSystemInformation {
    /// Vendor.
    #[serde(default, skip_serializing_if = "is_none")]
    pub systemVendor: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "is_none")]
    pub systemModel: Option<String>,
    /// Field strength in T.
    #[serde(default, skip_serializing_if = "is_none")]
    pub systemFieldStrength_T: Option<f64>,
    /// Relative receiver noise bandwidth.
    #[serde(default, skip_serializing_if = "is_none")]
    pub relativeReceiverNoiseBandwidth: Option<f64>,
    /// Number of receiver channels.
    #[serde(default, skip_serializing_if = "is_none")]
    pub receiverChannels: Option<u32>,
    /// Institution.
    #[serde(default, skip_serializing_if = "is_none")]
    pub institutionName: Option<String>,
    /// Station name.
    #[serde(default, skip_serializing_if = "is_none")]
    pub stationName: Option<String>,
    /// Device serial number.
    #[serde(default, skip_serializing_if = "is_none")]
    pub deviceID: Option<String>,
}

/// `experimentalConditions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExperimentalConditions {
    /// Larmor frequency in Hz.
    pub H1resonanceFrequency_Hz: i64,
}

/// A 3-vector of integers (`matrixSize`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MatrixSize {
    /// Readout.
    pub x: u32,
    /// Phase encoding 1.
    pub y: u32,
    /// Phase encoding 2 / slices.
    #[serde(default = "one")]
    pub z: u32,
}

fn one() -> u32 {
    1
}

/// A 3-vector in mm (`fieldOfView_mm`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FieldOfView {
    /// Readout.
    pub x: f64,
    /// Phase encoding 1.
    pub y: f64,
    /// Phase encoding 2 / slab or slice thickness.
    pub z: f64,
}

/// `encodedSpace` / `reconSpace`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EncodingSpace {
    /// Matrix.
    pub matrixSize: MatrixSize,
    /// Field of view.
    pub fieldOfView_mm: FieldOfView,
}

/// `minimum`, `maximum`, `center` of one encoding counter.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Limit {
    /// Smallest index.
    pub minimum: u32,
    /// Largest index.
    pub maximum: u32,
    /// Index of the k-space centre.
    pub center: u32,
}

/// `encodingLimits`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EncodingLimits {
    /// Readout.
    #[serde(default, skip_serializing_if = "is_none")]
    pub kspace_encoding_step_0: Option<Limit>,
    /// Phase encoding 1.
    #[serde(default, skip_serializing_if = "is_none")]
    pub kspace_encoding_step_1: Option<Limit>,
    /// Phase encoding 2.
    #[serde(default, skip_serializing_if = "is_none")]
    pub kspace_encoding_step_2: Option<Limit>,
    /// Averages.
    #[serde(default, skip_serializing_if = "is_none")]
    pub average: Option<Limit>,
    /// Slices.
    #[serde(default, skip_serializing_if = "is_none")]
    pub slice: Option<Limit>,
    /// Contrasts.
    #[serde(default, skip_serializing_if = "is_none")]
    pub contrast: Option<Limit>,
    /// Phases.
    #[serde(default, skip_serializing_if = "is_none")]
    pub phase: Option<Limit>,
    /// Repetitions.
    #[serde(default, skip_serializing_if = "is_none")]
    pub repetition: Option<Limit>,
    /// Sets.
    #[serde(default, skip_serializing_if = "is_none")]
    pub set: Option<Limit>,
    /// Segments.
    #[serde(default, skip_serializing_if = "is_none")]
    pub segment: Option<Limit>,
}

/// `accelerationFactor`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AccelerationFactor {
    /// Along phase encoding 1.
    pub kspace_encoding_step_1: u32,
    /// Along phase encoding 2.
    pub kspace_encoding_step_2: u32,
}

/// `parallelImaging`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ParallelImaging {
    /// Nominal acceleration.
    pub accelerationFactor: AccelerationFactor,
    /// embedded, interleaved, separate, external, other.
    #[serde(default, skip_serializing_if = "is_none")]
    pub calibrationMode: Option<String>,
    /// Counter along which calibration is interleaved.
    #[serde(default, skip_serializing_if = "is_none")]
    pub interleavingDimension: Option<String>,
}

/// One `encoding`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Encoding {
    /// What was acquired.
    pub encodedSpace: EncodingSpace,
    /// What is to be reconstructed.
    pub reconSpace: EncodingSpace,
    /// Index ranges.
    #[serde(default)]
    pub encodingLimits: EncodingLimits,
    /// cartesian, epi, radial, goldenangle, spiral, other.
    pub trajectory: String,
    /// Parallel imaging description.
    #[serde(default, skip_serializing_if = "is_none")]
    pub parallelImaging: Option<ParallelImaging>,
    /// Echo train length.
    #[serde(default, skip_serializing_if = "is_none")]
    pub echoTrainLength: Option<i64>,
}

/// `sequenceParameters` (times in ms, angles in degrees).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SequenceParameters {
    /// Repetition times.
    #[serde(default)]
    pub TR: Vec<f64>,
    /// Echo times.
    #[serde(default)]
    pub TE: Vec<f64>,
    /// Inversion times.
    #[serde(default)]
    pub TI: Vec<f64>,
    /// Flip angles.
    #[serde(default)]
    pub flipAngle_deg: Vec<f64>,
    /// Sequence type.
    #[serde(default, skip_serializing_if = "is_none")]
    pub sequence_type: Option<String>,
}

/// Namespace of ISMRMRD headers.
pub const ISMRMRD_NS: &str = "http://www.ismrm.org/ISMRMRD";

impl IsmrmrdHeader {
    /// Parses the XML text of a header.
    pub fn from_xml(xml: &str) -> Result<Self, quick_xml::DeError> {
        quick_xml::de::from_str(xml)
    }

    /// Serialises the header to XML (with the ISMRMRD namespace).
    pub fn to_xml(&self) -> Result<String, quick_xml::SeError> {
        let mut h = self.clone();
        if h.xmlns.is_none() {
            h.xmlns = Some(ISMRMRD_NS.to_string());
        }
        let body = quick_xml::se::to_string(&h)?;
        Ok(format!("<?xml version=\"1.0\"?>\n{body}"))
    }

    /// The first encoding, which basin reconstructs.
    pub fn first_encoding(&self) -> Option<&Encoding> {
        self.encoding.first()
    }
}
