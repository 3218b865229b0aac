//! `instruct-ipt`: restore photos from the command line.

mod info;
mod inspect;
mod instruction;
mod restore;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use instruct_ipt::Task;
use instruct_ipt::backend::{DeviceChoice, select_device};

/// All-in-one image restoration: denoise, deblur, derain, dehaze, desnow, low-light.
#[derive(Parser, Debug)]
#[command(name = "instruct-ipt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restore an image, or every image in a folder.
    Restore(RestoreArgs),
    /// Show how an instruction is understood: the probability of each task (and of "none") and
    /// the decision taken.
    Parse {
        /// The instruction, e.g. "please get rid of the rain".
        instruction: String,
        #[command(flatten)]
        encoder: instruction::EncoderArgs,
    },
    /// Show what is wrong with a photo: the recogniser's probability of each degradation (and of
    /// "clean"), and what restoring it without a task or instruction would do.
    Inspect {
        /// The image file.
        image: PathBuf,
        #[command(flatten)]
        recogniser: RecogniserArgs,
        /// Refuse images larger than this many megapixels (checked from the file's header).
        #[arg(long, default_value_t = instruct_ipt::DEFAULT_MAX_MEGAPIXELS)]
        max_megapixels: f64,
    },
    /// Serve a web page and an HTTP API on this computer: drop a photo, say what is wrong (or
    /// let the model look), compare before and after, download.
    Serve(serve::ServeArgs),
    /// Print a weight file's metadata and parameter counts per layer group.
    Info {
        /// The weight file (.safetensors); the bundled default weights when omitted.
        weights: Option<PathBuf>,
    },
}

/// Arguments of `instruct-ipt restore`.
#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// An image file, or a folder of images.
    input: PathBuf,
    /// Output file (format from its extension), or folder when the input is a folder.
    #[arg(short, long)]
    output: PathBuf,
    /// Weight file (.safetensors); the bundled default weights (tiny, six tasks) when omitted.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The restoration to apply: denoise, deblur, derain, dehaze, desnow or low_light. Without
    /// a task or an instruction the photo is restored blind: the recogniser decides what it has
    /// (`instruct-ipt inspect` shows what it sees), and a photo that looks clean is left alone.
    #[arg(long, conflicts_with = "instruction")]
    task: Option<Task>,
    /// Say what is wrong in your own words ("it was pouring when I took this"); requests that
    /// are not a restoration leave the image untouched and say why.
    #[arg(long)]
    instruction: Option<String>,
    #[command(flatten)]
    encoder: instruction::EncoderArgs,
    /// Refuse (write nothing) when the photo does not seem to have what the task or instruction
    /// asks to remove; by default that is a warning and the image is restored as asked.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    recogniser: RecogniserArgs,
    /// Tile side in pixels for large images; 0 restores the whole image at once.
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_TILE)]
    tile: usize,
    /// Restore each tile in its eight flips and transposes and average the results: eight times
    /// slower, a little better on every task.
    #[arg(long)]
    ensemble: bool,
    /// Where to run: cpu, libtorch, cuda or wgpu (all but cpu need a build with their feature).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Refuse input images larger than this many megapixels (checked from the file's header,
    /// before decoding).
    #[arg(long, default_value_t = instruct_ipt::DEFAULT_MAX_MEGAPIXELS)]
    max_megapixels: f64,
}

/// Which recogniser looks at photos.
#[derive(clap::Args, Debug)]
pub struct RecogniserArgs {
    /// Recogniser weights (from `cargo xtask train-recogniser`); the bundled one when omitted.
    #[arg(long = "recogniser")]
    path: Option<PathBuf>,
}

impl RecogniserArgs {
    /// The recogniser these options select, on the CPU.
    pub fn load(&self) -> anyhow::Result<instruct_ipt::Recogniser> {
        Ok(instruct_ipt::Recogniser::load_or_bundled(self.path.as_deref(), &instruct_ipt::Device::flex())?)
    }
}

/// mimalloc for the whole process (see `instruct_ipt::allocator`).
#[global_allocator]
static ALLOCATOR: instruct_ipt::allocator::MiMalloc = instruct_ipt::allocator::MiMalloc;

fn main() -> ExitCode {
    instruct_ipt::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Restore(args) => restore::run(args),
        Command::Parse { instruction, encoder } => encoder.router().map(|router| instruction::parse(&router, &instruction)),
        Command::Inspect { image, recogniser, max_megapixels } => {
            recogniser.load().and_then(|recogniser| inspect::run(&image, &recogniser, max_megapixels))
        }
        Command::Serve(args) => serve::run(args),
        Command::Info { weights } => {
            select_device(DeviceChoice::Cpu).map_err(anyhow::Error::from).and_then(|device| info::run(weights.as_deref(), &device))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
