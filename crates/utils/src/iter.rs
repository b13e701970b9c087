//! Lazy chunking and order-preserving de-duplication.

use std::collections::HashSet;
use std::hash::Hash;
use std::iter::FusedIterator;
use std::num::NonZeroUsize;

/// Splits `iter` into `Vec`s of `size` items, lazily; the last chunk holds
/// the remainder and may be shorter. An empty input yields no chunk.
///
/// Only one chunk is held in memory at a time, so this works on unbounded
/// inputs. `size` is a [`NonZeroUsize`] because a chunk of zero items is
/// meaningless.
///
/// ```
/// use std::num::NonZeroUsize;
/// use bigbrotr_utils::chunk;
///
/// let size = NonZeroUsize::new(2).ok_or("zero")?;
/// let chunks: Vec<Vec<u8>> = chunk([1, 2, 3, 4, 5], size).collect();
/// assert_eq!(chunks, [vec![1, 2], vec![3, 4], vec![5]]);
/// # Ok::<(), &str>(())
/// ```
pub fn chunk<I: IntoIterator>(iter: I, size: NonZeroUsize) -> Chunks<I::IntoIter> {
    Chunks {
        iter: iter.into_iter().fuse(),
        size,
    }
}

/// The iterator returned by [`chunk`].
#[derive(Debug, Clone)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Chunks<I> {
    iter: std::iter::Fuse<I>,
    size: NonZeroUsize,
}

impl<I: Iterator> Iterator for Chunks<I> {
    type Item = Vec<I::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        // `collect` sizes the Vec from `Take`'s hint, so a huge `size` does not
        // allocate more than the input actually provides.
        let chunk: Vec<_> = self.iter.by_ref().take(self.size.get()).collect();
        (!chunk.is_empty()).then_some(chunk)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (low, high) = self.iter.size_hint();
        let size = self.size.get();
        (low.div_ceil(size), high.map(|h| h.div_ceil(size)))
    }
}

impl<I: Iterator> FusedIterator for Chunks<I> {}

/// Removes repeated items, keeping the first occurrence of each, in input order.
///
/// ```
/// assert_eq!(bigbrotr_utils::dedup(["b", "a", "b", "c", "a"]), ["b", "a", "c"]);
/// ```
pub fn dedup<I>(items: I) -> Vec<I::Item>
where
    I: IntoIterator,
    I::Item: Eq + Hash,
{
    let mut items: Vec<I::Item> = items.into_iter().collect();
    // Decide first, then drop: the set borrows the items, so they cannot be
    // removed while it is alive; this way items need not be `Clone`.
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(items.len());
        items.iter().map(|item| seen.insert(item)).collect()
    };
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
    items
}

/// Removes items whose key was already seen, keeping the first item of each
/// key, in input order.
///
/// ```
/// let words = ["apple", "avocado", "banana", "blueberry", "cherry"];
/// let firsts = bigbrotr_utils::dedup_by_key(words, |w| w.chars().next());
/// assert_eq!(firsts, ["apple", "banana", "cherry"]);
/// ```
pub fn dedup_by_key<I, K, F>(items: I, mut key: F) -> Vec<I::Item>
where
    I: IntoIterator,
    K: Eq + Hash,
    F: FnMut(&I::Item) -> K,
{
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(key(item)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;

    fn size(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn chunk_splits_into_full_chunks_and_a_shorter_remainder() {
        let chunks: Vec<Vec<i32>> = chunk(1..=7, size(3)).collect();
        assert_eq!(chunks, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    }

    #[test]
    fn chunk_of_an_exact_multiple_has_no_empty_tail() {
        let chunks: Vec<Vec<i32>> = chunk(1..=4, size(2)).collect();
        assert_eq!(chunks, vec![vec![1, 2], vec![3, 4]]);
    }

    #[test]
    fn chunk_of_an_empty_input_yields_nothing() {
        assert_eq!(chunk(Vec::<u8>::new(), size(3)).next(), None);
    }

    #[test]
    fn chunk_larger_than_the_input_yields_the_whole_input_once() {
        let mut chunks = chunk([1, 2], size(usize::MAX));
        assert_eq!(chunks.next(), Some(vec![1, 2]));
        assert_eq!(chunks.next(), None);
        assert_eq!(chunks.next(), None);
    }

    #[test]
    fn chunk_pulls_only_one_chunk_at_a_time() {
        let pulled = Cell::new(0);
        let source = (0..).inspect(|_| pulled.set(pulled.get() + 1));
        let mut chunks = chunk(source, size(4));
        assert_eq!(chunks.next(), Some(vec![0, 1, 2, 3]));
        assert_eq!(pulled.get(), 4);
        assert_eq!(chunks.next(), Some(vec![4, 5, 6, 7]));
        assert_eq!(pulled.get(), 8);
    }

    #[test]
    fn chunk_size_hint_counts_chunks() {
        assert_eq!(chunk(0..10, size(3)).size_hint(), (4, Some(4)));
        assert_eq!(chunk(0..0, size(3)).size_hint(), (0, Some(0)));
        assert_eq!(
            chunk(0.., size(3)).size_hint(),
            (usize::MAX.div_ceil(3), None)
        );
    }

    #[test]
    fn dedup_keeps_first_occurrences_in_order() {
        assert_eq!(dedup([3, 1, 3, 2, 1, 3]), vec![3, 1, 2]);
    }

    #[test]
    fn dedup_of_empty_input_is_empty() {
        assert_eq!(dedup(Vec::<String>::new()), Vec::<String>::new());
    }

    #[test]
    fn dedup_works_without_clone() {
        #[derive(Debug, PartialEq, Eq, Hash)]
        struct NoClone(u8);
        assert_eq!(
            dedup([NoClone(1), NoClone(2), NoClone(1)]),
            vec![NoClone(1), NoClone(2)]
        );
    }

    #[test]
    fn dedup_by_key_keeps_the_first_item_of_each_key() {
        let pairs = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")];
        assert_eq!(
            dedup_by_key(pairs, |(k, _)| *k),
            vec![(1, "a"), (2, "b"), (3, "d")]
        );
    }

    #[test]
    fn dedup_by_key_of_empty_input_is_empty() {
        assert_eq!(dedup_by_key(Vec::<u8>::new(), |x| *x), Vec::<u8>::new());
    }

    proptest! {
        #[test]
        fn chunks_concatenate_back_to_the_input(
            input in proptest::collection::vec(any::<u8>(), 0..100),
            n in 1usize..20,
        ) {
            let chunks: Vec<Vec<u8>> = chunk(input.clone(), size(n)).collect();
            prop_assert_eq!(chunks.len(), input.len().div_ceil(n));
            if let Some((last, full)) = chunks.split_last() {
                prop_assert!(full.iter().all(|c| c.len() == n));
                prop_assert!(!last.is_empty() && last.len() <= n);
            }
            prop_assert_eq!(chunks.concat(), input);
        }

        #[test]
        fn dedup_matches_a_naive_first_occurrence_filter(
            input in proptest::collection::vec(0u8..10, 0..100),
        ) {
            let mut expected = Vec::new();
            for x in &input {
                if !expected.contains(x) {
                    expected.push(*x);
                }
            }
            prop_assert_eq!(dedup(input.clone()), expected.clone());
            prop_assert_eq!(dedup_by_key(input, |x| *x), expected);
        }
    }
}
