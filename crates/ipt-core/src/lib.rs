//! The few items every Instruct-IPT crate shares, so that no crate depends on another for one
//! of them: the [`Task`] list, [`write_atomically`], [`psnr_from_mse`] and the seeded mutations
//! of the fuzz tests ([`fuzz`]), the learning-rate schedule ([`warmup_cosine`]).

mod files;
pub mod fuzz;
mod psnr;
mod schedule;
mod task;

pub use files::{staging_folder, write_atomically, write_atomically_with};
pub use psnr::{PSNR_CAP_DB, psnr_from_mse};
pub use schedule::warmup_cosine;
pub use task::Task;
