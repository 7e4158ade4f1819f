//! The launch path shared by the Cuda and Emulator backends.
//!
//! Each kernel's C signature is declared once with [`declare_kernels!`]; the macro
//! generates one typed Rust function per kernel that checks buffer ownership and the
//! launch configuration, picks the dtype-suffixed symbol, and dispatches to
//! - Cuda: the embedded fatbin's function, through cudarc's launch builder;
//! - Emulator: the host-compiled symbol of the same name, through `tessera_emu_launch`.
//!
//! Argument kinds in a declaration:
//! - `input T`  : anything that is `Into<BufferView<T>>` (`&DeviceBuffer<T>`, a view)  → `const T*` in C
//! - `output T` : anything that is `Into<BufferViewMut<T>>` (`&mut DeviceBuffer<T>`, a writable view) → `T*` in C
//!
//! A view passes the address of its first element: the kernel sees exactly the viewed range.
//! - `scalar S` : `S` passed by value (ints, floats, `#[repr(C)]` parameter structs that
//!   implement `cudarc::driver::DeviceRepr`).

use crate::error::Error;

pub(crate) use crate::device::LaunchConfig;

pub(crate) fn not_on_cpu(kernel: &'static str) -> Error {
    Error::Unsupported {
        op: kernel,
        backend: crate::device::BackendKind::Cpu,
        reason: "raw kernels run on Cuda or Emulator; the Cpu backend runs the reference implementations".into(),
    }
}

pub(crate) fn host_storage_missing(arg: &'static str) -> Error {
    Error::invalid(arg, "buffer is not in host memory (internal: storage does not match its device)")
}

pub(crate) fn cuda_storage_missing(arg: &'static str) -> Error {
    Error::invalid(arg, "buffer is not in GPU memory (internal: storage does not match its device)")
}

/// Rust parameter type of a declared kernel argument.
macro_rules! __karg_ty {
    (input $t:ty) => { impl Into<$crate::device::BufferView<'k, $t>> };
    (output $t:ty) => { impl Into<$crate::device::BufferViewMut<'k, $t>> };
    (scalar $t:ty) => { $t };
}

/// Converts an argument to its view (inputs and outputs) or keeps it (scalars).
macro_rules! __karg_into {
    (input $t:ty, $a:ident) => {
        Into::<$crate::device::BufferView<'k, $t>>::into($a)
    };
    (output $t:ty, $a:ident) => {
        Into::<$crate::device::BufferViewMut<'k, $t>>::into($a)
    };
    (scalar $t:ty, $a:ident) => {
        $a
    };
}

/// C parameter type of a declared kernel argument (pointers erased: the C signature is
/// the contract, quoted in each declaration's doc comment).
macro_rules! __karg_raw_ty {
    (input $t:ty) => { *const ::std::ffi::c_void };
    (output $t:ty) => { *mut ::std::ffi::c_void };
    (scalar $t:ty) => { $t };
}

macro_rules! __karg_check {
    (input $dev:ident $a:ident) => {
        $dev.check_owns(stringify!($a), $a.buffer())?;
    };
    (output $dev:ident $a:ident) => {
        $dev.check_owns(stringify!($a), $a.buffer())?;
    };
    (scalar $dev:ident $a:ident) => {};
}

/// The emulator's record of a pointer argument (its exact byte range), pushed onto `$v`.
macro_rules! __karg_emu {
    ($v:ident input $a:ident) => {
        if let Some(h) = $a.host() {
            $v.push($crate::device::emulator::EmuArg::input(
                concat!(stringify!($a), "\0"),
                h.as_ptr() as *const ::std::ffi::c_void,
                ::std::mem::size_of_val(h),
            ));
        }
    };
    ($v:ident output $a:ident) => {
        if let Some(h) = $a.host_mut() {
            $v.push($crate::device::emulator::EmuArg::output(
                concat!(stringify!($a), "\0"),
                h.as_ptr() as *const ::std::ffi::c_void,
                ::std::mem::size_of_val(h),
            ));
        }
    };
    ($v:ident scalar $a:ident) => {};
}

macro_rules! __karg_host {
    (input $a:ident) => {
        $a.host().ok_or_else(|| $crate::kernels::launch::host_storage_missing(stringify!($a)))?.as_ptr()
            as *const ::std::ffi::c_void
    };
    (output $a:ident) => {
        $a.host_mut().ok_or_else(|| $crate::kernels::launch::host_storage_missing(stringify!($a)))?.as_mut_ptr()
            as *mut ::std::ffi::c_void
    };
    (scalar $a:ident) => {
        $a
    };
}

/// The cudarc value of an argument: a `CudaView`, a `CudaViewMut`, or the scalar.
macro_rules! __karg_cuda {
    (input $a:ident) => {
        $a.cuda_view().ok_or_else(|| $crate::kernels::launch::cuda_storage_missing(stringify!($a)))?
    };
    (output $a:ident) => {
        $a.cuda_view_mut().ok_or_else(|| $crate::kernels::launch::cuda_storage_missing(stringify!($a)))?
    };
    (scalar $a:ident) => {
        $a
    };
}

macro_rules! __karg_cuda_push {
    ($b:ident input $a:ident) => {
        $b.arg(&$a);
    };
    ($b:ident output $a:ident) => {
        $b.arg(&mut $a);
    };
    ($b:ident scalar $a:ident) => {
        $b.arg(&$a);
    };
}

/// The shared body: checks, then Cuda or Emulator dispatch of `$symbol`.
macro_rules! __kernel_dispatch {
    ($device:ident, $cfg:ident, $symbol:expr, $host_fn:expr, ($($arg:ident : $kind:ident),*)) => {{
        $( __karg_check!($kind $device $arg); )*
        $cfg.validate($symbol)?;
        if $cfg.is_empty() {
            return Ok(());
        }
        match $device.backend() {
            $crate::device::Backend::Emulator => {
                let mut emu_args = ::std::vec::Vec::new();
                $( __karg_emu!(emu_args $kind $arg); )*
                $( let $arg = __karg_host!($kind $arg); )*
                let host_fn = $host_fn;
                // SAFETY: the C kernel takes exactly these arguments in this order (see the
                // declaration's doc comment); the pointers come from buffers of this device
                // whose lengths the family wrapper checked against the launch.
                $crate::device::emulator::launch($symbol, $cfg, &emu_args, move || unsafe { host_fn($($arg),*) })
            }
            $crate::device::Backend::Cuda(cuda) => {
                #[allow(unused_imports)]
                use cudarc::driver::PushKernelArg;
                // Looked up once; the shared-memory opt-in is set once per size (CudaBackend::function).
                let function = cuda.function($symbol, $cfg.shared_mem_bytes)?;
                let stream = cuda.stream();
                $( #[allow(unused_mut)] let mut $arg = __karg_cuda!($kind $arg); )*
                let mut builder = stream.launch_builder(&function);
                $( __karg_cuda_push!(builder $kind $arg); )*
                // SAFETY: same argument order and types as the C signature.
                unsafe { builder.launch($cfg.to_cudarc()) }
                    .map(|_| ())
                    .map_err(|e| $crate::error::Error::driver(format!("launching {}", $symbol), e))
            }
            $crate::device::Backend::Cpu => Err($crate::kernels::launch::not_on_cpu($symbol)),
        }
    }};
}

/// One `mod <dtype> { extern "C" { fn kernel(...) } }` per dtype of a generic kernel,
/// linked to the symbol `<name>_<dtype>`.
macro_rules! __kernel_externs {
    ($name:ident; $args:tt; $($dt:ident),+) => {
        $( __kernel_extern_one!($name; $dt; $args); )+
    };
}

macro_rules! __kernel_extern_one {
    ($name:ident; $dt:ident; ($($arg:ident : $kind:ident $ty:ty),*)) => {
        pub mod $dt {
            #[allow(unused_imports)]
            use super::super::*;
            extern "C" {
                #[link_name = concat!(stringify!($name), "_", stringify!($dt))]
                pub fn kernel($($arg: __karg_raw_ty!($kind $ty)),*);
            }
        }
    };
}

/// Declares kernels once; see the module documentation.
///
/// ```text
/// declare_kernels! {
///     /// C: `fsq_quantize_<dt>(const T* z, int* codes, ..., unsigned n, FsqParams p)`
///     fn fsq_quantize<T: f32 | f16 | bf16>(z: input T, codes: output i32, n: scalar u32, p: scalar FsqParams);
///     fn selftest_reduce(x: input f32, out: output f32, n: scalar u32);
/// }
/// ```
macro_rules! declare_kernels {
    () => {};
    (
        $(#[$meta:meta])*
        fn $name:ident < $T:ident : $($dt:ident)|+ > ( $($arg:ident : $kind:ident $ty:ty),* $(,)? );
        $($rest:tt)*
    ) => {
        #[allow(non_snake_case, dead_code)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            __kernel_externs!($name; ($($arg: $kind $ty),*); $($dt),+);
        }

        $(#[$meta])*
        #[allow(clippy::too_many_arguments, dead_code)]
        pub(crate) fn $name<'k, $T: $crate::device::Element>(
            device: &$crate::device::Device,
            cfg: &$crate::kernels::launch::LaunchConfig,
            $($arg: __karg_ty!($kind $ty)),*
        ) -> $crate::error::Result<()> {
            #[allow(unused_imports)]
            use ::half::{bf16, f16};
            $( #[allow(unused_mut)] let mut $arg = __karg_into!($kind $ty, $arg); )*
            let dtype = <$T as $crate::device::Element>::DTYPE;
            let (symbol, host_fn): (&'static str, unsafe extern "C" fn($(__karg_raw_ty!($kind $ty)),*)) = $(
                if dtype == <$dt as $crate::device::Element>::DTYPE {
                    (concat!(stringify!($name), "_", stringify!($dt)), $name::$dt::kernel)
                } else
            )+ {
                return Err($crate::error::Error::UnsupportedDtype { kernel: stringify!($name), dtype });
            };
            __kernel_dispatch!(device, cfg, symbol, host_fn, ($($arg: $kind),*))
        }

        declare_kernels!($($rest)*);
    };
    (
        $(#[$meta:meta])*
        fn $name:ident ( $($arg:ident : $kind:ident $ty:ty),* $(,)? );
        $($rest:tt)*
    ) => {
        #[allow(non_snake_case, dead_code)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            extern "C" {
                #[link_name = stringify!($name)]
                pub fn kernel($($arg: __karg_raw_ty!($kind $ty)),*);
            }
        }

        $(#[$meta])*
        #[allow(clippy::too_many_arguments, dead_code)]
        pub(crate) fn $name<'k>(
            device: &$crate::device::Device,
            cfg: &$crate::kernels::launch::LaunchConfig,
            $($arg: __karg_ty!($kind $ty)),*
        ) -> $crate::error::Result<()> {
            $( #[allow(unused_mut)] let mut $arg = __karg_into!($kind $ty, $arg); )*
            let symbol: &'static str = stringify!($name);
            let host_fn: unsafe extern "C" fn($(__karg_raw_ty!($kind $ty)),*) = $name::kernel;
            __kernel_dispatch!(device, cfg, symbol, host_fn, ($($arg: $kind),*))
        }

        declare_kernels!($($rest)*);
    };
}
