//! Energy of a run: measured by RAPL when its counters are readable, else estimated.
//!
//! **RAPL** (`rapl`): the package domains `<root>/intel-rapl:N` (root normally
//! `/sys/class/powercap`; AMD's driver uses the same names) each hold `energy_uj`, a cumulative
//! counter in µJ that wraps to 0 after `max_energy_range_uj`. A reading is the difference of two
//! snapshots, with one wrap allowed per domain (a wrap takes minutes even at full power; two
//! cannot be told apart from none). Sub-domains (`intel-rapl:N:M`: cores, uncore, dram) are
//! inside their package and are skipped, as is `psys` (the whole platform, which contains the
//! packages). RAPL measures the whole machine, not only this process. The counters are often
//! root-only or absent (VMs): then the estimate is used.
//!
//! **Estimate** (`estimated`), CodeCarbon's process-share model: the CPU draws its TDP when all
//! logical cores are busy, and this process's share is its CPU time over the cores, so
//! `joules = cpu_seconds * tdp_watts / logical_cores`, where `cpu_seconds` is the user + system
//! time of the process (getrusage) during the run. `tdp_watts` defaults to
//! [`DEFAULT_TDP_WATTS`] (CodeCarbon's value for an unknown CPU) and is overridden by the
//! environment variable `MODELSPEC_CPU_TDP_WATTS`. The parameters go into every report.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// CodeCarbon's default TDP for a CPU it does not know.
pub const DEFAULT_TDP_WATTS: f64 = 85.0;

/// The powercap root on Linux.
pub const POWERCAP_ROOT: &str = "/sys/class/powercap";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergySource {
    Rapl,
    Estimated,
}

/// The estimate's model and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimateModel {
    /// The formula, in words, so that a report explains itself.
    pub formula: &'static str,
    pub tdp_watts: f64,
    pub logical_cores: usize,
    /// Process CPU time (user + system) during the measured span.
    pub cpu_seconds: f64,
}

pub const ESTIMATE_FORMULA: &str = "joules = cpu_seconds * tdp_watts / logical_cores (process share of the CPU's TDP, CodeCarbon-style)";

impl EstimateModel {
    pub fn new(tdp_watts: f64, logical_cores: usize, cpu_seconds: f64) -> Self {
        Self {
            formula: ESTIMATE_FORMULA,
            tdp_watts,
            logical_cores: logical_cores.max(1),
            cpu_seconds,
        }
    }

    pub fn joules(&self) -> f64 {
        self.cpu_seconds * self.tdp_watts / self.logical_cores as f64
    }
}

/// Energy over a measured span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Energy {
    pub source: EnergySource,
    pub joules: f64,
    /// Joules over the span's wall time.
    pub average_watts: f64,
    /// Present when `source` is `estimated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<EstimateModel>,
    /// The RAPL domains read (their `name` files), when `source` is `rapl`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

/// One RAPL package domain.
#[derive(Debug, Clone, PartialEq)]
pub struct RaplDomain {
    pub dir: PathBuf,
    pub name: String,
    /// The counter wraps to 0 after this value (µJ).
    pub max_energy_range_uj: u64,
}

impl RaplDomain {
    pub fn read_uj(&self) -> Option<u64> {
        read_u64(&self.dir.join("energy_uj"))
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The package domains under `root` whose counters can be read now; empty when RAPL is
/// absent or not readable.
pub fn rapl_domains(root: &Path) -> Vec<RaplDomain> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut domains: Vec<RaplDomain> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let index = file_name.strip_prefix("intel-rapl:")?;
            // Packages only: `intel-rapl:0`, not the sub-domain `intel-rapl:0:1`.
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let dir = e.path();
            let name = fs::read_to_string(dir.join("name"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| file_name.clone());
            if name == "psys" {
                return None;
            }
            let max_energy_range_uj = read_u64(&dir.join("max_energy_range_uj"))?;
            let domain = RaplDomain {
                dir,
                name,
                max_energy_range_uj,
            };
            domain.read_uj()?;
            Some(domain)
        })
        .collect();
    domains.sort_by(|a, b| a.dir.cmp(&b.dir));
    domains
}

/// Whether power can be measured here (RAPL readable under the real powercap root): a plan
/// limit on watts needs it, the estimate only follows CPU time.
pub fn rapl_readable() -> bool {
    !rapl_domains(Path::new(POWERCAP_ROOT)).is_empty()
}

/// µJ consumed between two readings of a counter that wraps to 0 after `max_range`.
pub fn rapl_delta_uj(start: u64, end: u64, max_range: u64) -> u64 {
    if end >= start {
        end - start
    } else {
        // Wrapped once: up to the top of the range from `start`, then from 0 to `end`.
        max_range.saturating_sub(start).saturating_add(end)
    }
}

/// Process CPU time (user + system) so far.
#[cfg(unix)]
pub fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points to
    // memory of that type owned by this frame.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: getrusage returned 0, so it initialised the struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

#[cfg(not(unix))]
pub fn process_cpu_time() -> Option<Duration> {
    None
}

/// The TDP the estimate uses: `MODELSPEC_CPU_TDP_WATTS` when set to a positive number, else
/// [`DEFAULT_TDP_WATTS`].
pub fn tdp_watts_from_env() -> f64 {
    std::env::var("MODELSPEC_CPU_TDP_WATTS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|w| w.is_finite() && *w > 0.0)
        .unwrap_or(DEFAULT_TDP_WATTS)
}

/// Measures the energy of a span: started before it, finished after.
#[derive(Debug)]
pub struct EnergyMeter {
    started: Instant,
    rapl: Vec<(RaplDomain, u64)>,
    cpu_start: Duration,
    tdp_watts: f64,
    logical_cores: usize,
}

impl EnergyMeter {
    /// Starts measuring with the real powercap tree and the estimate's parameters from the
    /// environment.
    pub fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::start_with(Path::new(POWERCAP_ROOT), tdp_watts_from_env(), cores)
    }

    /// Starts measuring with RAPL under `powercap_root` (when readable) or the estimate with
    /// these parameters.
    pub fn start_with(powercap_root: &Path, tdp_watts: f64, logical_cores: usize) -> Self {
        let rapl = rapl_domains(powercap_root)
            .into_iter()
            .filter_map(|d| {
                let start = d.read_uj()?;
                Some((d, start))
            })
            .collect();
        Self {
            started: Instant::now(),
            rapl,
            cpu_start: process_cpu_time().unwrap_or_default(),
            tdp_watts,
            logical_cores: logical_cores.max(1),
        }
    }

    pub fn source(&self) -> EnergySource {
        if self.rapl.is_empty() {
            EnergySource::Estimated
        } else {
            EnergySource::Rapl
        }
    }

    /// The energy since `start`.
    pub fn finish(&self) -> Energy {
        let wall = self.started.elapsed().as_secs_f64();
        let watts = |joules: f64| if wall > 0.0 { joules / wall } else { 0.0 };
        if !self.rapl.is_empty() {
            let ends: Option<Vec<u64>> = self.rapl.iter().map(|(d, _)| d.read_uj()).collect();
            if let Some(ends) = ends {
                let uj: u64 = self
                    .rapl
                    .iter()
                    .zip(ends)
                    .map(|((d, start), end)| rapl_delta_uj(*start, end, d.max_energy_range_uj))
                    .sum();
                let joules = uj as f64 / 1e6;
                return Energy {
                    source: EnergySource::Rapl,
                    joules,
                    average_watts: watts(joules),
                    model: None,
                    domains: self.rapl.iter().map(|(d, _)| d.name.clone()).collect(),
                };
            }
            // A counter that became unreadable mid-run: fall back to the estimate.
        }
        let cpu = process_cpu_time()
            .unwrap_or_default()
            .saturating_sub(self.cpu_start);
        let model = EstimateModel::new(self.tdp_watts, self.logical_cores, cpu.as_secs_f64());
        let joules = model.joules();
        Energy {
            source: EnergySource::Estimated,
            joules,
            average_watts: watts(joules),
            model: Some(model),
            domains: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(root: &Path, dir: &str, name: &str, energy: u64, max: u64) -> PathBuf {
        let d = root.join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("name"), format!("{name}\n")).unwrap();
        fs::write(d.join("energy_uj"), format!("{energy}\n")).unwrap();
        fs::write(d.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
        d
    }

    #[test]
    fn delta_without_and_with_wrap_around() {
        assert_eq!(rapl_delta_uj(1_000, 5_000, 262_143_328_850), 4_000);
        assert_eq!(rapl_delta_uj(7, 7, 100), 0);
        // 262_143_328_850 is a real max_energy_range_uj; the counter wrapped past it.
        assert_eq!(
            rapl_delta_uj(262_143_000_000, 500_000, 262_143_328_850),
            328_850 + 500_000
        );
        assert_eq!(rapl_delta_uj(90, 10, 100), 20);
    }

    #[test]
    fn finds_package_domains_only_and_skips_psys_and_unreadable_ones() {
        let root = tempfile::tempdir().unwrap();
        domain(root.path(), "intel-rapl:0", "package-0", 10, 1_000);
        domain(root.path(), "intel-rapl:0:0", "core", 5, 1_000);
        domain(root.path(), "intel-rapl:1", "psys", 10, 1_000);
        let broken = domain(root.path(), "intel-rapl:2", "package-1", 10, 1_000);
        fs::write(broken.join("energy_uj"), "not a number").unwrap();
        fs::create_dir_all(root.path().join("dtpm")).unwrap();
        let found = rapl_domains(root.path());
        let names: Vec<_> = found.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["package-0"]);
        assert_eq!(found[0].max_energy_range_uj, 1_000);
    }

    #[test]
    fn meter_reads_rapl_with_wrap_around_across_packages() {
        let root = tempfile::tempdir().unwrap();
        let p0 = domain(
            root.path(),
            "intel-rapl:0",
            "package-0",
            999_000_000,
            1_000_000_000,
        );
        let p1 = domain(
            root.path(),
            "intel-rapl:1",
            "package-1",
            2_000_000,
            1_000_000_000,
        );
        let meter = EnergyMeter::start_with(root.path(), 85.0, 2);
        assert_eq!(meter.source(), EnergySource::Rapl);
        // package-0 wraps: 1 J to the top, then 2 J; package-1 uses 3 J.
        fs::write(p0.join("energy_uj"), "2000000\n").unwrap();
        fs::write(p1.join("energy_uj"), "5000000\n").unwrap();
        let e = meter.finish();
        assert_eq!(e.source, EnergySource::Rapl);
        assert!((e.joules - 6.0).abs() < 1e-9, "{}", e.joules);
        assert_eq!(e.domains, ["package-0", "package-1"]);
        assert!(e.model.is_none());
        assert!(e.average_watts > 0.0);
    }

    #[test]
    fn meter_falls_back_to_the_estimate_without_rapl() {
        let root = tempfile::tempdir().unwrap();
        let meter = EnergyMeter::start_with(&root.path().join("absent"), 40.0, 4);
        assert_eq!(meter.source(), EnergySource::Estimated);
        // Burn some CPU time so that the estimate has something to count. The loop counts the
        // process's CPU time, not the wall clock: on a loaded machine 50 ms of wall time can hold
        // far less than 20 ms of CPU time for this thread.
        let cpu0 = process_cpu_time().unwrap();
        let t = Instant::now();
        let mut x = 1u64;
        while process_cpu_time().unwrap() - cpu0 < Duration::from_millis(30)
            && t.elapsed() < Duration::from_secs(30)
        {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let e = meter.finish();
        let model = e.model.clone().unwrap();
        assert_eq!(e.source, EnergySource::Estimated);
        assert_eq!((model.tdp_watts, model.logical_cores), (40.0, 4));
        assert!(model.cpu_seconds >= 0.02, "{}", model.cpu_seconds);
        assert!((e.joules - model.cpu_seconds * 10.0).abs() < 1e-12);
        // At most a quarter of the TDP per busy core (other tests may run on other threads
        // meanwhile); the lower bound only says the estimate counted something, since how much
        // of the wall time this thread got depends on the machine's load.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            e.average_watts > 0.0 && e.average_watts <= 10.0 * cores * 1.05,
            "{}",
            e.average_watts
        );
    }

    #[test]
    fn estimate_is_cpu_time_times_the_per_core_share_of_tdp() {
        let m = EstimateModel::new(85.0, 2, 3.0);
        assert!((m.joules() - 127.5).abs() < 1e-12);
        assert_eq!(EstimateModel::new(85.0, 0, 1.0).logical_cores, 1);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["tdp_watts"], 85.0);
        assert_eq!(json["logical_cores"], 2);
        assert!(json["formula"].as_str().unwrap().contains("tdp_watts"));
    }
}
