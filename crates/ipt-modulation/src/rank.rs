//! How the rank of each layer's task bias is chosen.

use serde::{Deserialize, Serialize};

/// The rank of `B1 @ B2` for each modulated layer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RankPolicy {
    /// The same rank for every layer: the paper's choice (Table 10: better and cheaper).
    Constant {
        /// The rank.
        rank: usize,
    },
    /// A rank proportional to the layer's size, `ratio * min(C_out, C_in * k * k)`: the ablation.
    Proportional {
        /// Fraction of the full rank.
        ratio: f64,
    },
}

impl Default for RankPolicy {
    fn default() -> Self {
        RankPolicy::Constant { rank: 4 }
    }
}

impl RankPolicy {
    /// The rank for a weight matrix of `rows x columns`, between 1 and `min(rows, columns)`.
    pub fn rank(&self, rows: usize, columns: usize) -> usize {
        let full = rows.min(columns).max(1);
        let wanted = match *self {
            RankPolicy::Constant { rank } => rank,
            RankPolicy::Proportional { ratio } => (ratio * full as f64).round() as usize,
        };
        wanted.clamp(1, full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rank_is_capped_by_the_matrix() {
        let policy = RankPolicy::Constant { rank: 8 };
        assert_eq!(policy.rank(64, 576), 8);
        assert_eq!(policy.rank(3, 144), 3);
    }

    #[test]
    fn proportional_rank_grows_with_the_layer() {
        let policy = RankPolicy::Proportional { ratio: 0.125 };
        assert_eq!(policy.rank(16, 16), 2);
        assert_eq!(policy.rank(128, 256), 16);
        assert_eq!(policy.rank(4, 4), 1);
    }
}
