//! Blind restoration for Instruct-IPT (issue #25): a small network that looks at a photo and
//! says which of the six degradations it has, and whether it is clean. The CLI restores a photo
//! given neither a task nor an instruction with what it recognises, and questions an
//! instruction that contradicts the photo.
//!
//! The network ([`network`]) sees the photo twice ([`views`]): shrunk whole, for haze, low
//! light and colour casts, and as full-resolution crops, for noise, streaks, flakes and blur.
//! Every class is scored on its own (sigmoid, not softmax), since a photo can be dark *and*
//! noisy. It is trained (feature `training`, `cargo xtask train-recogniser`) on the same
//! synthesizers as the restorer, on the training photos only.

mod class;
mod error;
pub mod network;
mod recogniser;
#[cfg(feature = "training")]
pub mod training;
pub mod views;

pub use class::{ABSENT, Class, Doubt, PRESENT, Recognition, SECOND_PRESENT};
pub use error::RecogniseError;
pub use ipt_core::Task;
pub use recogniser::{BUNDLED_RECOGNISER, Recogniser};
pub use views::Views;
