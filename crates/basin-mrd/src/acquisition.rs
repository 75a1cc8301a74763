//! ISMRMRD acquisitions: the fixed-layout header (field names and types exactly as in the
//! ISMRMRD C library, so HDF5 converts them by name), the flags, and the decoded acquisition.

use basin_core::C32;
use ndarray::Array2;

/// ISMRMRD flags, 1-based as in the standard: flag N is bit N−1 of `flags`.
pub mod flags {
    /// First acquisition of a slice.
    pub const FIRST_IN_SLICE: u32 = 7;
    /// Last acquisition of a slice.
    pub const LAST_IN_SLICE: u32 = 8;
    /// Noise measurement.
    pub const IS_NOISE_MEASUREMENT: u32 = 19;
    /// Parallel-imaging calibration only.
    pub const IS_PARALLEL_CALIBRATION: u32 = 20;
    /// Calibration and imaging.
    pub const IS_PARALLEL_CALIBRATION_AND_IMAGING: u32 = 21;
    /// Readout acquired in reverse.
    pub const IS_REVERSE: u32 = 22;
    /// Navigator.
    pub const IS_NAVIGATION_DATA: u32 = 23;
    /// Phase-correction line (EPI).
    pub const IS_PHASECORR_DATA: u32 = 24;
    /// Last acquisition of the measurement.
    pub const LAST_IN_MEASUREMENT: u32 = 25;
    /// Hyperpolarisation feedback.
    pub const IS_HPFEEDBACK_DATA: u32 = 26;
    /// Dummy scan.
    pub const IS_DUMMYSCAN_DATA: u32 = 27;
    /// Real-time feedback.
    pub const IS_RTFEEDBACK_DATA: u32 = 28;
    /// Surface coil correction scan.
    pub const IS_SURFACECOILCORRECTIONSCAN_DATA: u32 = 29;
    /// Phase stabilisation reference.
    pub const IS_PHASE_STABILIZATION_REFERENCE: u32 = 30;
    /// Phase stabilisation.
    pub const IS_PHASE_STABILIZATION: u32 = 31;

    /// The bit mask of 1-based flag `n`.
    pub const fn bit(n: u32) -> u64 {
        1u64 << (n - 1)
    }

    /// Whether 1-based flag `n` is set in `flags`.
    pub const fn is_set(flags: u64, n: u32) -> bool {
        flags & bit(n) != 0
    }
}

/// Encoding counters (`idx`).
#[derive(hdf5::H5Type, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct EncodingCounters {
    /// Phase encoding line.
    pub kspace_encode_step_1: u16,
    /// Partition (3D).
    pub kspace_encode_step_2: u16,
    /// Average.
    pub average: u16,
    /// Slice.
    pub slice: u16,
    /// Contrast (echo).
    pub contrast: u16,
    /// Cardiac phase.
    pub phase: u16,
    /// Repetition.
    pub repetition: u16,
    /// Set.
    pub set: u16,
    /// Segment.
    pub segment: u16,
    /// User counters.
    pub user: [u16; 8],
}

/// The ISMRMRD acquisition header.
#[derive(hdf5::H5Type, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct AcquisitionHeader {
    /// Format version.
    pub version: u16,
    /// Flags (1-based, see [`flags`]).
    pub flags: u64,
    /// Measurement id.
    pub measurement_uid: u32,
    /// Scan counter.
    pub scan_counter: u32,
    /// Time stamp (2.5 ms ticks).
    pub acquisition_time_stamp: u32,
    /// Physiology time stamps.
    pub physiology_time_stamp: [u32; 3],
    /// Samples per channel.
    pub number_of_samples: u16,
    /// Available channels.
    pub available_channels: u16,
    /// Channels in `data`.
    pub active_channels: u16,
    /// Channel mask.
    pub channel_mask: [u64; 16],
    /// Samples to drop at the start.
    pub discard_pre: u16,
    /// Samples to drop at the end.
    pub discard_post: u16,
    /// Sample index of the k-space centre.
    pub center_sample: u16,
    /// Which encoding this belongs to.
    pub encoding_space_ref: u16,
    /// Dimensions of `traj`.
    pub trajectory_dimensions: u16,
    /// Dwell time in µs.
    pub sample_time_us: f32,
    /// Slice centre in patient coordinates (mm).
    pub position: [f32; 3],
    /// Readout direction.
    pub read_dir: [f32; 3],
    /// Phase direction.
    pub phase_dir: [f32; 3],
    /// Slice direction.
    pub slice_dir: [f32; 3],
    /// Table position.
    pub patient_table_position: [f32; 3],
    /// Encoding counters.
    pub idx: EncodingCounters,
    /// User integers.
    pub user_int: [i32; 8],
    /// User floats.
    pub user_float: [f32; 8],
}

impl AcquisitionHeader {
    /// Whether 1-based flag `n` is set.
    pub fn is_flag_set(&self, n: u32) -> bool {
        flags::is_set(self.flags, n)
    }
    /// Sets 1-based flag `n`.
    pub fn set_flag(&mut self, n: u32) {
        self.flags |= flags::bit(n);
    }
}

/// One decoded acquisition: header, trajectory and samples `[channel, sample]`.
#[derive(Clone, Debug)]
pub struct Acquisition {
    /// The header.
    pub head: AcquisitionHeader,
    /// Trajectory, `trajectory_dimensions × number_of_samples` values.
    pub traj: Vec<f32>,
    /// Samples, `[active_channels, number_of_samples]`.
    pub data: Array2<C32>,
}
