//! Choosing a device, moving data, launching: the only place that touches cubecl's client.

use cubecl::device::WgpuDeviceKind;
use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::Device;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Errors of the GPU backend.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter of the requested kind.
    #[error("no GPU: {0}")]
    NoDevice(String),
    /// Inputs that do not fit together.
    #[error("{0}")]
    Shape(String),
}

pub use basin_core::Backend;

/// A device-resident array of `len` elements of `T`.
pub struct DBuf<T = f32> {
    handle: Handle,
    len: usize,
    _t: PhantomData<T>,
}

impl<T> DBuf<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kernel argument for this buffer.
    pub(crate) fn arg(&self) -> BufferArg {
        // SAFETY: the handle was allocated by `Gpu` for exactly `len` elements of `T`, the
        // element type every kernel declares for it.
        unsafe { BufferArg::from_raw_parts(self.handle.clone(), self.len.max(1)) }
    }
}

/// An opened device: the cubecl client, what it is, and a counter of host↔device copies.
pub struct Gpu {
    client: cubecl::client::Client,
    description: String,
    software: bool,
    copies: AtomicUsize,
}

/// The client of `device` and the adapter's name, or None when it is not there.
fn try_client(
    device: Result<Device, impl std::fmt::Display>,
) -> Option<(cubecl::client::Client, String)> {
    let device = device.ok()?;
    // Opening an adapter that enumerates but cannot create a device panics inside wgpu;
    // treat that as "not available" rather than aborting a reconstruction.
    let client = std::panic::catch_unwind(move || device.client()).ok()?;
    let name = client.properties().identity.name.clone();
    Some((client, name))
}

impl Gpu {
    /// Opens the device `backend` asks for: `Ok(None)` means "run on the CPU" (`Auto` with no
    /// hardware GPU, or `Cpu`). `Gpu` with no hardware adapter falls back to a software one with
    /// a warning, and fails when there is none.
    pub fn open(backend: Backend) -> Result<Option<Gpu>, GpuError> {
        if backend == Backend::Cpu {
            return Ok(None);
        }
        if let Some(g) = Self::hardware() {
            return Ok(Some(g));
        }
        match backend {
            Backend::Auto => Ok(None),
            _ => {
                let g = Self::software()?;
                tracing::warn!(
                    "no hardware GPU adapter; running on the software adapter {} (slow: for checking, not for speed)",
                    g.description
                );
                Ok(Some(g))
            }
        }
    }

    /// The first hardware adapter: CUDA (when built with it), then a discrete, integrated or
    /// virtual GPU through wgpu.
    pub fn hardware() -> Option<Gpu> {
        #[cfg(feature = "cuda")]
        if let Some((client, name)) = try_client(Device::cuda(0)) {
            return Some(Self::wrap(client, format!("{name} (CUDA)"), false));
        }
        for kind in [
            WgpuDeviceKind::DiscreteGpu(0),
            WgpuDeviceKind::IntegratedGpu(0),
            WgpuDeviceKind::VirtualGpu(0),
        ] {
            if let Some((client, name)) = try_client(Device::wgpu(kind.clone())) {
                return Some(Self::wrap(
                    client,
                    format!("{name} (wgpu, {kind:?})"),
                    false,
                ));
            }
        }
        None
    }

    /// The software adapter (lavapipe, llvmpipe, WARP): what the parity tests run on.
    pub fn software() -> Result<Gpu, GpuError> {
        let (client, name) = try_client(Device::wgpu(WgpuDeviceKind::Cpu)).ok_or_else(|| {
            GpuError::NoDevice(
                "no software Vulkan adapter either (on Debian: apt-get install mesa-vulkan-drivers libvulkan1)"
                    .into(),
            )
        })?;
        Ok(Self::wrap(
            client,
            format!("{name} (wgpu, software adapter)"),
            true,
        ))
    }

    /// The device the GPU tests run on: the hardware adapter when `BASIN_GPU_HARDWARE` is set
    /// (benches/gpu/run.sh on a GPU machine), else the software adapter (lavapipe in CI).
    pub fn for_tests() -> Result<Gpu, GpuError> {
        if std::env::var_os("BASIN_GPU_HARDWARE").is_some() {
            Self::hardware().ok_or_else(|| {
                GpuError::NoDevice(
                    "BASIN_GPU_HARDWARE is set but no hardware adapter answered".into(),
                )
            })
        } else {
            Self::software()
        }
    }

    fn wrap(client: cubecl::client::Client, description: String, software: bool) -> Gpu {
        Gpu {
            client,
            description,
            software,
            copies: AtomicUsize::new(0),
        }
    }

    /// What the device is, for logs and reports.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether it is a software adapter.
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// The largest single buffer the device allocates, in bytes (cubecl's page limit: the
    /// storage-buffer binding limit, or the device heap with 64-bit indexing).
    pub fn max_buffer_bytes(&self) -> u64 {
        self.client.properties().memory.max_page_size
    }

    /// Host↔device copies made so far (uploads and downloads).
    pub fn copies(&self) -> usize {
        self.copies.load(Ordering::Relaxed)
    }

    /// Copies `data` to the device.
    pub fn upload<T: CubeElement>(&self, data: &[T]) -> DBuf<T> {
        self.copies.fetch_add(1, Ordering::Relaxed);
        let handle = if data.is_empty() {
            self.client.empty(std::mem::size_of::<T>())
        } else {
            self.client.create_from_slice(T::as_bytes(data))
        };
        DBuf {
            handle,
            len: data.len(),
            _t: PhantomData,
        }
    }

    /// Copies a buffer back to the host.
    pub fn download<T: CubeElement + Clone>(&self, b: &DBuf<T>) -> Vec<T> {
        self.copies.fetch_add(1, Ordering::Relaxed);
        let bytes = self.client.read_one_unchecked(b.handle.clone());
        T::from_bytes(&bytes)[..b.len].to_vec()
    }

    /// A new f32 buffer of `n` zeros, filled on the device (no copy).
    pub fn zeros(&self, n: usize) -> DBuf<f32> {
        let b = DBuf {
            handle: self.client.empty(n.max(1) * 4),
            len: n,
            _t: PhantomData,
        };
        self.fill_zero(&b);
        b
    }

    /// b = 0.
    pub fn fill_zero(&self, b: &DBuf<f32>) {
        let (c, d) = grid(b.len);
        crate::kernels::fill_zero::launch(&self.client, c, d, b.arg(), b.len as u32);
    }

    /// dst = src (same length).
    pub fn copy(&self, src: &DBuf<f32>, dst: &DBuf<f32>) {
        debug_assert_eq!(src.len, dst.len);
        let (c, d) = grid(src.len);
        crate::kernels::copy::launch(&self.client, c, d, src.arg(), dst.arg(), src.len as u32);
    }

    /// The cubecl client, for the kernel wrappers of this crate.
    pub(crate) fn client(&self) -> &cubecl::client::Client {
        &self.client
    }

    /// Waits for every launched kernel to finish (for timing).
    pub fn sync(&self) {
        let _ = cubecl::future::block_on(self.client.sync());
    }
}

/// Cube count and dimension for `n` threads of one value each (2D grid beyond 65 535 cubes).
pub(crate) fn grid(n: usize) -> (CubeCount, CubeDim) {
    let blocks = n.div_ceil(crate::kernels::BLOCK as usize).max(1) as u32;
    let x = blocks.min(65_535);
    let y = blocks.div_ceil(x);
    (
        CubeCount::Static(x, y, 1),
        CubeDim::new_1d(crate::kernels::BLOCK),
    )
}
