//! Prints the kernel path and codebook split that the nearest-codebook search picks for
//! the benchmark shapes: `cargo run --example search_plans`.

use tessera::{Codebook, Device, FloatElement, Metric, SearchOptions};

fn plans<T: FloatElement>(device: &Device, n: usize) -> tessera::Result<()> {
    for k in [1024, 4096, 16384, 65536] {
        for d in [8, 32, 256] {
            let codebook = Codebook::new(device, device.zeros::<T>(k * d)?, d, Metric::SquaredL2)?;
            let plan = codebook.plan(n, &SearchOptions::default())?;
            println!(
                "{:>5?} N={n:<6} K={k:<6} D={d:<4} -> {:?}, {} split(s) of {} codes",
                T::DTYPE,
                plan.path,
                plan.splits,
                plan.codes_per_split
            );
        }
    }
    Ok(())
}

fn main() -> tessera::Result<()> {
    let device = Device::cpu();
    for n in [65536, 256] {
        plans::<f32>(&device, n)?;
        plans::<half::bf16>(&device, n)?;
    }
    Ok(())
}
