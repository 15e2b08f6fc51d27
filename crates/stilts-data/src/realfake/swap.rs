//! Drawing a fake from one sentence: `k` disjoint pairs of positions, each holding two different
//! words (step 3 of the recipe in the module above).

use std::collections::HashMap;

use super::{MAX_ATTEMPTS, MAX_SWAPS, MIN_SWAPS};
use crate::rng::Rng;

/// How many times the most frequent token occurs.
fn top_frequency(tokens: &[&str]) -> usize {
    let mut freq: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut top = 0;
    for t in tokens {
        let c = freq.entry(t).or_insert(0);
        *c += 1;
        top = top.max(*c);
    }
    top
}

/// The most disjoint pairs of different words `tokens` holds: `min(len / 2, len - top)`.
pub(super) fn max_pairs(tokens: &[&str]) -> usize {
    (tokens.len() / 2).min(tokens.len() - top_frequency(tokens))
}

/// `k` disjoint position pairs, each holding two different words: `k` uniform in
/// `MIN_SWAPS..=MAX_SWAPS`, capped at [`max_pairs`]; the pairs are redrawn up to
/// [`MAX_ATTEMPTS`] times, then `k` is lowered by one (down to `MIN_SWAPS`) and redrawn again.
pub(super) fn draw_swaps(tokens: &[&str], rng: &mut Rng) -> Option<Vec<(usize, usize)>> {
    let cap = max_pairs(tokens);
    if cap < MIN_SWAPS {
        return None;
    }
    let drawn = (MIN_SWAPS + rng.below_usize(MAX_SWAPS - MIN_SWAPS + 1)).min(cap);
    for k in (MIN_SWAPS..=drawn).rev() {
        for _ in 0..MAX_ATTEMPTS {
            let positions = rng.sample_indices(tokens.len(), 2 * k);
            let swaps: Vec<(usize, usize)> = positions
                .chunks_exact(2)
                .map(|p| (p[0].min(p[1]), p[0].max(p[1])))
                .collect();
            if swaps.iter().all(|&(a, b)| tokens[a] != tokens[b]) {
                return Some(swaps);
            }
        }
    }
    None
}

pub(super) fn apply_swaps(sentence: &str, swaps: &[(usize, usize)]) -> String {
    let mut tokens: Vec<&str> = sentence.split(' ').collect();
    for &(a, b) in swaps {
        tokens.swap(a, b);
    }
    tokens.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_capacity() {
        assert_eq!(max_pairs(&["a", "b", "c", "d"]), 2);
        assert_eq!(max_pairs(&["a", "a", "b", "b"]), 2);
        assert_eq!(max_pairs(&["a", "a", "a", "b"]), 1);
        assert_eq!(max_pairs(&["a", "a", "a", "a", "a"]), 0);
        assert_eq!(max_pairs(&["a", "a", "a", "b", "c"]), 2);
        assert_eq!(max_pairs(&["a", "b", "c"]), 1);
        assert_eq!(
            max_pairs(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]),
            5
        );
    }

    #[test]
    fn swap_counts_are_uniform_up_to_the_cap() {
        let mut rng = Rng::new(11);
        let tokens: Vec<String> = (0..20).map(|i| format!("w{}", i % 6)).collect();
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let mut by_k = [0usize; 5];
        for _ in 0..3000 {
            by_k[draw_swaps(&tokens, &mut rng).unwrap().len()] += 1;
        }
        for k in MIN_SWAPS..=MAX_SWAPS {
            assert!((900..1100).contains(&by_k[k]), "{by_k:?}");
        }
        let capped = ["x", "x", "x", "x", "y", "z", "x", "x"];
        for _ in 0..100 {
            assert_eq!(draw_swaps(&capped, &mut rng).unwrap().len(), 2);
        }
    }

    #[test]
    fn swaps_are_disjoint_and_of_different_words() {
        let mut rng = Rng::new(5);
        let tokens = ["x", "x", "x", "y", "z", "x", "w", "x", "x", "x"];
        for _ in 0..500 {
            let swaps = draw_swaps(&tokens, &mut rng).expect("feasible sentence");
            assert!((MIN_SWAPS..=MAX_SWAPS).contains(&swaps.len()));
            let mut seen = std::collections::HashSet::new();
            for &(a, b) in &swaps {
                assert!(a < b && tokens[a] != tokens[b]);
                assert!(seen.insert(a) && seen.insert(b));
            }
        }
    }

    #[test]
    fn short_sentences_cap_the_number_of_swaps() {
        let mut rng = Rng::new(9);
        for _ in 0..100 {
            let swaps = draw_swaps(&["a", "b", "c", "d", "e"], &mut rng).unwrap();
            assert_eq!(swaps.len(), 2);
        }
    }
}
