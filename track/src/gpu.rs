//! NVIDIA GPUs through NVML (`libnvidia-ml.so`, loaded at run time by `nvml-wrapper`): energy from
//! each device's total-energy counter (mJ since the driver loaded), power and utilisation. Only
//! the devices `CUDA_VISIBLE_DEVICES` names, when set; a device NVML refuses is left out, said so.

use nvml_wrapper::Nvml;

pub struct Gpus {
    nvml: Nvml,
    /// NVML indexes of the devices measured.
    indexes: Vec<u32>,
    /// Per device: the counter when last read, mJ (`None`: no energy counter; power × time).
    last_mj: Vec<Option<u64>>,
    /// Power of the devices without a counter, W, at the last look.
    uncounted_w: f64,
    pub names: Vec<String>,
}

/// The devices `CUDA_VISIBLE_DEVICES` lets the command use: indexes or UUIDs (`GPU-…`).
fn visible(spec: Option<&str>, index: u32, uuid: &str) -> bool {
    match spec {
        None => true,
        Some(s) => {
            s.split(',').map(str::trim).any(|v| v == index.to_string() || (!v.is_empty() && uuid.starts_with(v)))
        }
    }
}

impl Gpus {
    /// The machine's GPUs, or why there are none to measure (no driver, no device).
    pub fn open() -> Result<Gpus, String> {
        let nvml = Nvml::init().map_err(|e| format!("no NVIDIA driver (NVML: {e}): GPU energy is 0"))?;
        let n = nvml.device_count().map_err(|e| format!("NVML cannot count GPUs ({e}): GPU energy is 0"))?;
        let spec = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let (mut indexes, mut last_mj, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let d = match nvml.device_by_index(i) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("carbon-dash track: GPU {i} left out: {e}");
                    continue;
                }
            };
            if !visible(spec.as_deref(), i, &d.uuid().unwrap_or_default()) {
                continue;
            }
            indexes.push(i);
            names.push(d.name().unwrap_or_else(|_| format!("GPU {i}")));
            last_mj.push(d.total_energy_consumption().ok());
        }
        if indexes.is_empty() {
            return Err("NVML finds no GPU this command may use: GPU energy is 0".into());
        }
        Ok(Gpus { nvml, indexes, last_mj, uncounted_w: 0.0, names })
    }

    /// The model line CodeCarbon writes: `8 x NVIDIA H200`.
    pub fn model(&self) -> String {
        match self.names.first() {
            Some(first) if self.names.iter().all(|n| n == first) => format!("{} x {first}", self.names.len()),
            _ => self.names.join(", "),
        }
    }

    /// Joules the devices' energy counters counted since the last call.
    pub fn counters_j(&mut self) -> f64 {
        let mut joules = 0.0;
        for (k, &i) in self.indexes.iter().enumerate() {
            let Ok(d) = self.nvml.device_by_index(i) else { continue };
            let Ok(now) = d.total_energy_consumption() else { continue };
            if let Some(before) = self.last_mj[k] {
                joules += now.saturating_sub(before) as f64 / 1000.0;
            }
            self.last_mj[k] = Some(now);
        }
        joules
    }

    /// Power now (W, all devices) and utilisation (%, their mean).
    pub fn now(&mut self) -> (f64, f64) {
        let (mut watts, mut util, mut uncounted) = (0.0, 0.0, 0.0);
        for (k, &i) in self.indexes.iter().enumerate() {
            let Ok(d) = self.nvml.device_by_index(i) else { continue };
            let w = d.power_usage().map(|mw| f64::from(mw) / 1000.0).unwrap_or(0.0);
            watts += w;
            if self.last_mj[k].is_none() {
                uncounted += w;
            }
            util += d.utilization_rates().map(|u| f64::from(u.gpu)).unwrap_or(0.0);
        }
        self.uncounted_w = uncounted;
        (watts, util / self.indexes.len().max(1) as f64)
    }

    /// Power of the devices without an energy counter (their energy is power × time).
    pub fn uncounted_w(&self) -> f64 {
        self.uncounted_w
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_visible_devices_names_indexes_or_uuids() {
        use super::visible;
        assert!(visible(None, 3, "GPU-abc"));
        assert!(visible(Some("0,3"), 3, "GPU-abc"));
        assert!(!visible(Some("0,1"), 3, "GPU-abc"));
        assert!(visible(Some("GPU-ab"), 5, "GPU-abc"));
        assert!(!visible(Some(""), 0, "GPU-abc"));
    }
}
