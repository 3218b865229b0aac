//! Architecture configuration of the backbone and its named presets.

use crate::ModelError;
use serde::{Deserialize, Serialize};

/// Number of resolution levels of the U-shaped encoder/decoder (docs/design.md §1).
pub const LEVELS: usize = 4;

/// Largest width, image channel count, window, grid and block count a config may ask for:
/// far above any real model, low enough that a config read from a file cannot overflow
/// [`IptConfig::backbone_parameters`].
pub const MAX_SIZE: usize = 1 << 16;

/// Largest FFN expansion a config may ask for.
pub const MAX_FFN_EXPANSION: f64 = 64.0;

/// Architecture hyper-parameters of [`crate::IptModel`].
///
/// Serialised into every weight file, so a file alone is enough to rebuild its model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IptConfig {
    /// Image channels in and out (3 for RGB).
    pub image_channels: usize,
    /// Feature channels at full resolution; level `i` has `width * 2^i`.
    pub width: usize,
    /// Transformer blocks per encoder level (the last one is the bottleneck).
    pub encoder_blocks: [usize; LEVELS],
    /// Transformer blocks per decoder level, from full resolution to the deepest decoder level.
    pub decoder_blocks: [usize; LEVELS - 1],
    /// Transformer blocks at full resolution after the decoder.
    pub refinement_blocks: usize,
    /// Attention heads per level.
    pub heads: [usize; LEVELS],
    /// Side of the square windows of focal context (channel) self-attention.
    pub window_size: usize,
    /// Side of the sparse grid of global grid (spatial) self-attention.
    pub grid_size: usize,
    /// Hidden channels of the locally-enhanced FFN, as a multiple of the block's channels.
    pub ffn_expansion: f64,
}

impl IptConfig {
    /// Channels of level `level` (0 = full resolution).
    pub fn channels(&self, level: usize) -> usize {
        self.width << level
    }

    /// Every input side must be a multiple of this: windows and grids must tile the deepest level.
    pub fn size_multiple(&self) -> usize {
        let window_and_grid = lcm(self.window_size, self.grid_size);
        window_and_grid << (LEVELS - 1)
    }

    /// Checks the invariants the layers rely on, naming the field that breaks one.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.image_channels == 0 || self.width == 0 {
            return Err(ModelError::invalid("image_channels, width", "must be positive"));
        }
        let sizes = [
            ("image_channels", self.image_channels),
            ("width", self.width),
            ("window_size", self.window_size),
            ("grid_size", self.grid_size),
        ];
        let blocks = self.encoder_blocks.iter().chain(&self.decoder_blocks).chain([&self.refinement_blocks]);
        for (field, value) in sizes.into_iter().chain(blocks.map(|&count| ("encoder_blocks, decoder_blocks, refinement_blocks", count))) {
            if value > MAX_SIZE {
                return Err(ModelError::invalid(field, format!("{value} is above {MAX_SIZE}")));
            }
        }
        if !self.width.is_multiple_of(2) {
            return Err(ModelError::invalid("width", format!("must be even (down-sampling halves it), got {}", self.width)));
        }
        for (level, &heads) in self.heads.iter().enumerate() {
            let channels = self.channels(level);
            if heads == 0 || !channels.is_multiple_of(heads) {
                return Err(ModelError::invalid(
                    format!("heads[{level}]"),
                    format!("{heads} must divide the {channels} channels of level {level}"),
                ));
            }
        }
        if self.window_size == 0 || self.grid_size == 0 {
            return Err(ModelError::invalid("window_size, grid_size", "must be positive"));
        }
        if !(self.ffn_expansion > 0.0 && self.ffn_expansion <= MAX_FFN_EXPANSION) {
            return Err(ModelError::invalid("ffn_expansion", format!("must be in (0, {MAX_FFN_EXPANSION}], got {}", self.ffn_expansion)));
        }
        Ok(())
    }

    /// Parameters of the plain backbone ([`IptConfig::init`]), counted without building it: a
    /// weight file must hold at least this many values, which bounds what loading it allocates.
    /// Meaningful for configs that pass [`IptConfig::validate`] (no overflow within its limits).
    pub fn backbone_parameters(&self) -> u128 {
        let conv = |cin: u128, cout: u128, kernel: u128, groups: u128, bias: bool| {
            cout * (cin / groups) * kernel * kernel + u128::from(bias) * cout
        };
        let block = |level: usize| {
            let (c, heads) = (self.channels(level) as u128, self.heads[level] as u128);
            let hidden = self.ffn_hidden(self.channels(level)) as u128;
            let norms = 3 * 2 * c;
            let focal = conv(c, 3 * c, 1, 1, false) + conv(3 * c, 3 * c, 3, 3 * c, false) + heads + conv(c, c, 1, 1, false);
            let grid = conv(c, 3 * c, 1, 1, false) + conv(c, c, 1, 1, false);
            let ffn = conv(c, 2 * hidden, 1, 1, true) + conv(2 * hidden, 2 * hidden, 3, 2 * hidden, true) + conv(hidden, c, 1, 1, true);
            norms + focal + grid + ffn
        };
        let stage = |level: usize, count: usize| count as u128 * block(level);
        let encoder: u128 = (0..LEVELS).map(|level| stage(level, self.encoder_blocks[level])).sum();
        let decoder: u128 = (0..LEVELS - 1).map(|level| stage(level, self.decoder_blocks[level])).sum();
        let between: u128 = (0..LEVELS - 1)
            .map(|level| {
                let c = self.channels(level) as u128;
                conv(c, c / 2, 3, 1, false) + conv(2 * c, 4 * c, 3, 1, false) + conv(2 * c, c, 1, 1, false)
            })
            .sum();
        let (image, width) = (self.image_channels as u128, self.width as u128);
        encoder + decoder + between + stage(0, self.refinement_blocks) + conv(image, width, 3, 1, true) + conv(width, image, 3, 1, true)
    }

    /// Hidden channels of the FFN of a block with `channels` channels.
    pub fn ffn_hidden(&self, channels: usize) -> usize {
        ((channels as f64) * self.ffn_expansion).round().max(1.0) as usize
    }
}

/// Named model sizes: `tiny` trains on a 2-core CPU, `base` is the paper's scale.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// ~1M parameters: CPU training and fast tests.
    Tiny,
    /// ~6M parameters: GPU training.
    Small,
    /// ~25M parameters: the paper's scale.
    Base,
}

impl Preset {
    /// Every preset, smallest first.
    pub const ALL: [Preset; 3] = [Preset::Tiny, Preset::Small, Preset::Base];

    /// The architecture of this preset.
    pub fn config(self) -> IptConfig {
        let common = IptConfig {
            image_channels: 3,
            width: 16,
            encoder_blocks: [1, 1, 1, 2],
            decoder_blocks: [1, 1, 1],
            refinement_blocks: 1,
            heads: [1, 2, 4, 8],
            window_size: 8,
            grid_size: 8,
            ffn_expansion: 2.0,
        };
        match self {
            Preset::Tiny => common,
            Preset::Small => {
                IptConfig { width: 32, encoder_blocks: [2, 2, 2, 4], decoder_blocks: [2, 2, 2], refinement_blocks: 2, ..common }
            }
            Preset::Base => IptConfig {
                width: 48,
                encoder_blocks: [2, 3, 3, 6],
                decoder_blocks: [2, 3, 3],
                refinement_blocks: 2,
                ffn_expansion: 2.66,
                ..common
            },
        }
    }

    /// The preset's lowercase name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Base => "base",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|preset| preset.name() == name)
            .ok_or_else(|| format!("unknown preset '{name}' (expected tiny, small or base)"))
    }
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for preset in Preset::ALL {
            preset.config().validate().unwrap();
        }
    }

    #[test]
    fn size_multiple_covers_the_deepest_level() {
        let config = Preset::Tiny.config();
        assert_eq!(config.size_multiple(), 64);
        let odd = IptConfig { window_size: 4, grid_size: 6, ..config };
        assert_eq!(odd.size_multiple(), 12 * 8);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let config = IptConfig { heads: [1, 3, 4, 8], ..Preset::Tiny.config() };
        let error = config.validate().unwrap_err();
        assert!(matches!(&error, ModelError::InvalidConfig { key, .. } if key == "heads[1]"), "{error}");
        assert_eq!(error.to_string(), "heads[1]: 3 must divide the 32 channels of level 1");
    }

    #[test]
    fn preset_files_in_configs_match_the_presets() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/models");
        for preset in Preset::ALL {
            let path = folder.join(format!("{}.toml", preset.name()));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let parsed: IptConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(parsed, preset.config(), "{}", path.display());
        }
    }

    #[test]
    fn unknown_config_keys_are_rejected_by_name() {
        let error = toml::from_str::<IptConfig>("widht = 3").unwrap_err().to_string();
        assert!(error.contains("widht"), "{error}");
    }

    #[test]
    fn preset_names_round_trip() {
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
        }
        assert!("huge".parse::<Preset>().is_err());
    }
}
