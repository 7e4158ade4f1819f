//! The Cuda backend: cudarc with the driver loaded at run time, one stream per device,
//! kernels from the fatbins that build.rs compiled with nvcc (none without nvcc).

use super::{Device, Element};
use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/device_code.rs"));
}

/// True when build.rs found nvcc and embedded GPU code for the kernels.
pub const KERNELS_COMPILED: bool = cfg!(tessera_device_code);

/// Names of the kernel files compiled for the GPU (empty without nvcc).
pub fn compiled_kernel_files() -> Vec<&'static str> {
    embedded::DEVICE_CODE.iter().map(|(stem, _)| *stem).collect()
}

/// What the host offers for CUDA, found without panicking.
#[derive(Debug, Clone)]
pub struct CudaProbe {
    /// The CUDA driver library (libcuda) could be loaded.
    pub driver_found: bool,
    /// Number of GPUs, or why it could not be counted.
    pub devices: std::result::Result<usize, String>,
    /// build.rs compiled the kernels for the GPU.
    pub kernels_compiled: bool,
}

/// Looks for the driver and GPUs. Never panics, never fails.
pub fn probe() -> CudaProbe {
    // SAFETY: only tries to dlopen the driver library.
    let driver_found = unsafe { cudarc::driver::sys::is_culib_present() };
    let devices = if driver_found {
        std::panic::catch_unwind(CudaContext::device_count)
            .map_err(|_| "the driver library could not be initialised".to_string())
            .and_then(|r| r.map(|n| n.max(0) as usize).map_err(|e| format!("{e:?}")))
    } else {
        Err("no CUDA driver library (libcuda) found".into())
    };
    CudaProbe { driver_found, devices, kernels_compiled: KERNELS_COMPILED }
}

pub(crate) struct CudaBackend {
    ordinal: usize,
    name: String,
    stream: Arc<CudaStream>,
    modules: Vec<Arc<CudaModule>>,
    /// Each kernel looked up once, with the dynamic shared memory its launches have been
    /// allowed so far (the attribute is set under this lock, once per larger size).
    functions: Mutex<HashMap<&'static str, (CudaFunction, u32)>>,
    /// The cuBLASLt handle of the benchmark baseline (`crate::baseline`), made on its first
    /// call: its workspace is 32 MiB on Hopper, too much to allocate per call. Boxed: the
    /// handle is large and most devices never make one.
    cublaslt: std::sync::OnceLock<Box<cudarc::cublaslt::CudaBlasLT>>,
}

impl CudaBackend {
    pub(crate) fn new(ordinal: usize) -> Result<Self> {
        let probe = probe();
        if !probe.driver_found {
            return Err(Error::CudaUnavailable("no CUDA driver library (libcuda) found".into()));
        }
        match &probe.devices {
            Err(e) => return Err(Error::CudaUnavailable(format!("cannot count GPUs: {e}"))),
            Ok(n) if ordinal >= *n => {
                return Err(Error::CudaUnavailable(format!("GPU {ordinal} requested, {n} present")))
            }
            Ok(_) => {}
        }
        if !KERNELS_COMPILED {
            return Err(Error::CudaUnavailable(
                "tessera was built without nvcc, so no kernel was compiled for the GPU; \
                 put nvcc on PATH (or set CUDA_HOME / TESSERA_NVCC) and rebuild"
                    .into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| Error::CudaUnavailable(format!("{e:?}")))?;
        // A stream of tessera's own, not the legacy default stream, which would serialize
        // with every other library's work on the device.
        let stream = ctx.new_stream().map_err(|e| Error::driver("creating a stream", e))?;
        Self::on_stream(stream)
    }

    /// Runs on `stream` (a stream the caller already has, e.g. another library's).
    pub(crate) fn on_stream(stream: Arc<CudaStream>) -> Result<Self> {
        if !KERNELS_COMPILED {
            return Err(Error::CudaUnavailable(
                "tessera was built without nvcc, so no kernel was compiled for the GPU".into(),
            ));
        }
        let ctx = stream.context().clone();
        let ordinal = ctx.ordinal();
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let mut modules = Vec::new();
        for (stem, image) in embedded::DEVICE_CODE {
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))
                .map_err(|e| Error::driver(format!("loading kernels/{stem}.cu"), e))?;
            modules.push(module);
        }
        Ok(CudaBackend {
            ordinal,
            name,
            stream,
            modules,
            functions: Mutex::new(HashMap::new()),
            cublaslt: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn ordinal(&self) -> usize {
        self.ordinal
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// This device's cuBLASLt handle, empty until `crate::baseline` makes it.
    pub(crate) fn cublaslt(&self) -> &std::sync::OnceLock<Box<cudarc::cublaslt::CudaBlasLT>> {
        &self.cublaslt
    }

    pub(crate) fn peak_memory_bandwidth(&self) -> Option<f64> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let ctx = self.stream.context();
        let khz = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).ok()?;
        let bits = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).ok()?;
        Some(khz as f64 * 1e3 * 2.0 * bits as f64 / 8.0)
    }

    /// Dense peak FLOP/s of the device for `dtype` (f32: CUDA-core FMA; f16/bf16: tensor
    /// cores with f32 accumulation), from the SM count, the clock and the per-SM rate of
    /// its architecture; None for an architecture not in the table.
    pub(crate) fn peak_flops(&self, dtype: super::DType) -> Option<f64> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let ctx = self.stream.context();
        let sms = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).ok()? as f64;
        let khz = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE).ok()? as f64;
        let major = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).ok()?;
        let minor = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR).ok()?;
        // FLOPs per clock per SM (an FMA counts 2).
        let per_sm = match ((major, minor), dtype) {
            ((8, 0), super::DType::F32) => 128.0,
            ((8, 0), super::DType::F16 | super::DType::BF16) => 2048.0,
            ((9, 0), super::DType::F32) => 256.0,
            ((9, 0), super::DType::F16 | super::DType::BF16) => 4096.0,
            _ => return None,
        };
        Some(sms * khz * 1e3 * per_sm)
    }

    pub(crate) fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| Error::driver("synchronize", e))
    }

    /// The kernel `name` from whichever embedded module defines it, allowed to launch with
    /// `shared_mem_bytes` of dynamic shared memory. The lookup and the opt-in beyond 48 KiB
    /// happen once per kernel (and per larger size), under the cache's lock, so threads
    /// sharing the device never race on the attribute.
    pub(crate) fn function(&self, name: &'static str, shared_mem_bytes: u32) -> Result<CudaFunction> {
        let mut cache = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(name) {
            let f = self.modules.iter().find_map(|m| m.load_function(name).ok()).ok_or_else(|| {
                Error::driver(format!("looking up kernel {name}"), "not found in any embedded module")
            })?;
            cache.insert(name, (f, 48 * 1024));
        }
        let (f, allowed) = cache.get_mut(name).expect("inserted above");
        if shared_mem_bytes > *allowed {
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                shared_mem_bytes as i32,
            )
            .map_err(|e| Error::driver(format!("shared memory opt-in for {name}"), e))?;
            *allowed = shared_mem_bytes;
        }
        Ok(f.clone())
    }

    pub(crate) fn upload<T: Element>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        if data.is_empty() {
            return self.zeros(0);
        }
        self.stream.clone_htod(data).map_err(|e| Error::driver("upload", e))
    }

    /// One u32 reading `u32::MAX` (a status word's "no row"), set on the device: no copy.
    pub(crate) fn status_word(&self) -> Result<CudaSlice<u32>> {
        // SAFETY: allocation of plain integers, filled right after on the same stream.
        let mut word = unsafe { self.stream.alloc::<u32>(1) }.map_err(|e| Error::driver("alloc", e))?;
        self.fill_ones(&mut word)?;
        Ok(word)
    }

    /// Reads a status word (synchronizes the stream) and resets it to `u32::MAX` on the device.
    pub(crate) fn read_and_reset_status_word(&self, word: &mut CudaSlice<u32>) -> Result<u32> {
        let value = self.stream.clone_dtoh(word).map_err(|e| Error::driver("reading a status word", e))?[0];
        self.fill_ones(word)?;
        Ok(value)
    }

    fn fill_ones(&self, word: &mut CudaSlice<u32>) -> Result<()> {
        use cudarc::driver::DevicePtrMut;
        let stream = self.stream.cu_stream();
        let (ptr, _record) = word.device_ptr_mut(&self.stream);
        // SAFETY: `ptr` addresses the 4 bytes of `word`, alive for the asynchronous memset
        // (the slice outlives the stream work; `_record` orders it on this stream).
        unsafe { cudarc::driver::result::memset_d8_async(ptr, 0xff, 4, stream) }
            .map_err(|e| Error::driver("resetting a status word", e))
    }

    /// `len` elements (at least one allocated), not initialized: for outputs a kernel
    /// writes in full.
    pub(crate) fn uninit<T: Element>(&self, len: usize) -> Result<CudaSlice<T>> {
        // SAFETY: T is plain data (any bit pattern is a value); the caller's kernel writes
        // every element before it is read.
        unsafe { self.stream.alloc::<T>(len.max(1)) }.map_err(|e| Error::driver("alloc", e))
    }

    pub(crate) fn zeros<T: Element>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros(len.max(1)).map_err(|e| Error::driver("alloc", e))
    }
}

fn backend(device: &Device) -> &CudaBackend {
    match device.backend() {
        super::Backend::Cuda(c) => c,
        _ => unreachable!("Cuda storage on a non-Cuda device"),
    }
}

pub(crate) fn download<T: Element>(device: &Device, view: &cudarc::driver::CudaView<'_, T>) -> Result<Vec<T>> {
    backend(device).stream.clone_dtoh(view).map_err(|e| Error::driver("download", e))
}

pub(crate) fn copy_into<T: Element>(device: &Device, slice: &mut CudaSlice<T>, data: &[T]) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    backend(device).stream.memcpy_htod(data, slice).map_err(|e| Error::driver("copy to device", e))
}
