//! Data for Instruct-IPT: the six degradation synthesizers, dataset specs, loaders for the
//! public benchmark layouts, fixed evaluation sets and the multi-threaded training sampler.
//!
//! Only clean photos are assumed: the degradations are synthesized, as the standard benchmarks
//! themselves were (BSD68 noise, Rain100L streaks, SOTS haze, CSD snow). Every random choice is
//! a pure function of a seed ([`random`]), so the same spec and seed give the same data on
//! every machine, and a resumed training run sees exactly the batches it would have seen.

pub mod benchmarks;
pub mod degrade;
pub mod error;
pub mod eval_set;
pub mod filter;
pub mod random;
pub mod rgb;
pub mod sampler;
pub mod spec;

pub use benchmarks::{Benchmark, BenchmarkImage, BenchmarkSet};
pub use degrade::{Degradation, DegradationParams};
pub use eval_set::{EvalSetManifest, EvalSetSpec};
pub use error::{DataError, Result};
pub use random::{DataRng, Span};
pub use rgb::Rgb;
pub use sampler::{Batch, BatchStream, PatchSampler, Sample, SamplerConfig};
pub use spec::DatasetSpec;
