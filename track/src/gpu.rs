//! NVIDIA GPUs through NVML (`libnvidia-ml.so`, loaded at run time by `nvml-wrapper`): energy from
//! each device's total-energy counter (mJ since the driver loaded), power and utilisation.

use nvml_wrapper::Nvml;

pub struct Gpus {
    nvml: Nvml,
    /// Per device: the counter when last read, mJ (`None`: the device has no energy counter).
    last_mj: Vec<Option<u64>>,
    pub names: Vec<String>,
}

impl Gpus {
    /// The machine's GPUs, or why there are none to measure (no driver, no device).
    pub fn open() -> Result<Gpus, String> {
        let nvml = Nvml::init().map_err(|e| format!("no NVIDIA driver (NVML: {e}): GPU energy is 0"))?;
        let n = nvml.device_count().map_err(|e| format!("NVML cannot count GPUs ({e}): GPU energy is 0"))?;
        if n == 0 {
            return Err("NVML finds no GPU: GPU energy is 0".into());
        }
        let mut last_mj = Vec::new();
        let mut names = Vec::new();
        for i in 0..n {
            let d = nvml.device_by_index(i).map_err(|e| format!("GPU {i}: {e}"))?;
            names.push(d.name().unwrap_or_else(|_| format!("GPU {i}")));
            last_mj.push(d.total_energy_consumption().ok());
        }
        Ok(Gpus { nvml, last_mj, names })
    }

    /// The model line CodeCarbon writes: `8 x NVIDIA H200`.
    pub fn model(&self) -> String {
        match self.names.first() {
            Some(first) if self.names.iter().all(|n| n == first) => format!("{} x {first}", self.names.len()),
            _ => self.names.join(", "),
        }
    }

    /// Since the last call: joules used by all GPUs (from the counters; devices without one,
    /// power × `dt`), their power (W, summed) and utilisation (%, mean).
    pub fn sample(&mut self, dt_s: f64) -> (f64, f64, f64) {
        let (mut joules, mut watts, mut util) = (0.0, 0.0, 0.0);
        for (i, last) in self.last_mj.iter_mut().enumerate() {
            let Ok(d) = self.nvml.device_by_index(i as u32) else { continue };
            let w = d.power_usage().map(|mw| f64::from(mw) / 1000.0).unwrap_or(0.0);
            watts += w;
            util += d.utilization_rates().map(|u| f64::from(u.gpu)).unwrap_or(0.0);
            match (d.total_energy_consumption().ok(), *last) {
                (Some(now), Some(before)) => {
                    joules += now.saturating_sub(before) as f64 / 1000.0;
                    *last = Some(now);
                }
                _ => joules += w * dt_s,
            }
        }
        (joules, watts, util / self.last_mj.len().max(1) as f64)
    }
}
