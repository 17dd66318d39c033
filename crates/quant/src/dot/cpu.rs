//! What the CPU offers the kernels, detected once per process.

use std::sync::OnceLock;

/// The SIMD instruction sets relevant to the kernels (all false off x86-64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512vnni: bool,
    pub avxvnni: bool,
}

impl CpuFeatures {
    /// The names of the features present, e.g. `["avx", "avx2", "fma", "f16c"]`.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("avx", self.avx),
            ("avx2", self.avx2),
            ("fma", self.fma),
            ("f16c", self.f16c),
            ("avx512f", self.avx512f),
            ("avx512bw", self.avx512bw),
            ("avx512vl", self.avx512vl),
            ("avx512vnni", self.avx512vnni),
            ("avxvnni", self.avxvnni),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
    }
}

/// The kernel family [`crate::dot::Backend::Simd`] runs on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// No SIMD kernels: the scalar reference runs.
    None,
    /// AVX2 with F16C.
    Avx2,
    /// AVX2 and F16C with AVX-512 (F, BW, VL) and VNNI: the AVX2 kernels, with 512-bit and
    /// VNNI integer sums for Q4_K, Q6_K and Q8_0.
    Avx512Vnni,
}

impl SimdLevel {
    /// Every level this CPU runs, lowest first (for tests that check each kernel family).
    pub fn supported() -> Vec<SimdLevel> {
        [SimdLevel::None, SimdLevel::Avx2, SimdLevel::Avx512Vnni]
            .into_iter()
            .filter(|l| *l <= simd_level())
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::None => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512Vnni => "avx512vnni",
        }
    }
}

/// The CPU's features, detected on first use.
pub fn cpu_features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(detect)
}

/// The SIMD kernels this CPU runs.
pub fn simd_level() -> SimdLevel {
    let f = cpu_features();
    if f.avx2 && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni {
        SimdLevel::Avx512Vnni
    } else if f.avx2 && f.f16c {
        SimdLevel::Avx2
    } else {
        SimdLevel::None
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CpuFeatures {
    use std::arch::is_x86_feature_detected as has;
    CpuFeatures {
        avx: has!("avx"),
        avx2: has!("avx2"),
        fma: has!("fma"),
        f16c: has!("f16c"),
        avx512f: has!("avx512f"),
        avx512bw: has!("avx512bw"),
        avx512vl: has!("avx512vl"),
        avx512vnni: has!("avx512vnni"),
        avxvnni: has!("avxvnni"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CpuFeatures {
    CpuFeatures::default()
}
