//! Timelines: capped lists of ids kept newest first, with cursor pagination.

use tessera_protocol::commands::{Cursor, DEFAULT_TIMELINE_CAP};

use crate::data::codec::{Damaged, In, Out};

/// A timeline: items ordered by (score, id), largest first, at most `cap` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    items: Vec<Cursor>,
    cap: u32,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            cap: DEFAULT_TIMELINE_CAP,
        }
    }
}

/// One page of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items, newest first.
    pub items: Vec<Cursor>,
    /// Cursor for the next (older) page, if there may be one.
    pub next: Option<Cursor>,
}

impl Timeline {
    /// Saves the timeline: its cap and items, newest first.
    pub fn save(&self, out: &mut Out<'_>) {
        out.uint(u64::from(self.cap));
        out.uint(self.items.len() as u64);
        for item in &self.items {
            out.int(item.score);
            out.uint(item.id);
        }
    }

    /// Reads a timeline `save` wrote.
    ///
    /// # Errors
    /// The bytes are damaged or its items are out of order.
    pub fn load(input: &mut In<'_>) -> Result<Timeline, Damaged> {
        let cap = u32::try_from(input.uint()?).map_err(|_| Damaged("timeline cap"))?;
        let count = input.count()?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(Cursor {
                score: input.int()?,
                id: input.uint()?,
            });
        }
        if items.windows(2).any(|pair| pair[0] <= pair[1]) {
            return Err(Damaged("timeline items out of order"));
        }
        Ok(Timeline { items, cap })
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the timeline holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Cursor>()
    }

    /// Adds `item` unless its id is already there or it is older than the cap keeps;
    /// `cap`, if given, becomes the timeline's cap. Returns whether it was added.
    pub fn push(&mut self, item: Cursor, cap: Option<u32>) -> bool {
        if let Some(cap) = cap {
            self.cap = cap;
            self.items.truncate(cap as usize);
        }
        if self.items.iter().any(|existing| existing.id == item.id) {
            return false;
        }
        let at = self.items.partition_point(|existing| *existing > item);
        if at >= self.cap as usize {
            return false;
        }
        self.items.insert(at, item);
        self.items.truncate(self.cap as usize);
        true
    }

    /// Removes `id`; whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        match self.items.iter().position(|item| item.id == id) {
            Some(at) => {
                self.items.remove(at);
                true
            }
            None => false,
        }
    }

    /// Keeps the newest `keep` items; returns how many were removed.
    pub fn trim(&mut self, keep: u32) -> usize {
        let before = self.items.len();
        self.items.truncate(keep as usize);
        before - self.items.len()
    }

    /// Up to `limit` items strictly older than `before` and strictly newer than `after`.
    /// With only `after`, the items just above it (the oldest of the newer ones).
    pub fn range(&self, before: Option<Cursor>, after: Option<Cursor>, limit: u32) -> Page {
        let start = before.map_or(0, |c| self.items.partition_point(|item| *item >= c));
        let end = after.map_or(self.items.len(), |c| {
            self.items.partition_point(|item| *item > c)
        });
        let window = &self.items[start.min(end)..end];
        let limit = limit as usize;
        let (chosen, more_older) = if before.is_none() && after.is_some() {
            // Newer-than pages take the items just above the cursor; nothing older is left.
            (&window[window.len().saturating_sub(limit)..], false)
        } else {
            let taken = window.len().min(limit);
            (&window[..taken], taken < window.len())
        };
        Page {
            items: chosen.to_vec(),
            next: if more_older {
                chosen.last().copied()
            } else {
                None
            },
        }
    }
}

/// Merges pages from several timelines: newest first, one entry per id, at most `limit`.
pub fn merge(pages: Vec<Page>, limit: u32) -> Page {
    let mut more = pages.iter().any(|page| page.next.is_some());
    let mut items: Vec<Cursor> = pages.into_iter().flat_map(|page| page.items).collect();
    items.sort_unstable_by(|a, b| b.cmp(a));
    let mut seen = hashbrown::HashSet::new();
    items.retain(|item| seen.insert(item.id));
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        more = true;
    }
    let next = if more { items.last().copied() } else { None };
    Page { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(id: u64) -> Cursor {
        Cursor {
            score: id as i64,
            id,
        }
    }

    #[test]
    fn keeps_newest_first_capped_without_duplicates() {
        let mut t = Timeline::default();
        assert!(t.push(id(5), Some(3)));
        assert!(t.push(id(9), None));
        assert!(t.push(id(7), None));
        assert!(!t.push(id(7), None), "duplicate");
        assert!(!t.push(id(1), None), "older than the cap keeps");
        assert!(t.push(id(8), None));
        assert_eq!(t.range(None, None, 10).items, vec![id(9), id(8), id(7)]);
        assert!(t.remove(8));
        assert_eq!(t.trim(1), 1);
        assert_eq!(t.range(None, None, 10).items, vec![id(9)]);
    }

    proptest! {
        /// Paging with BEFORE cursors while new ids arrive at the top sees every item that
        /// was there when paging began exactly once, in order.
        #[test]
        fn pagination_never_skips_or_repeats(
            initial in proptest::collection::btree_set(0u64..10_000, 1..200),
            page in 1u32..15,
            arrivals in proptest::collection::vec(10_000u64..20_000, 0..100),
        ) {
            let mut t = Timeline::default();
            for &i in &initial {
                t.push(id(i), Some(1000));
            }
            let expected: Vec<Cursor> = initial.iter().rev().map(|&i| id(i)).collect();
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut arrivals = arrivals.into_iter();
            loop {
                let result = t.range(cursor, None, page);
                seen.extend(result.items.iter().copied());
                if let Some(new) = arrivals.next() {
                    t.push(id(new), None);
                }
                match result.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let seen: Vec<Cursor> = seen.into_iter().filter(|c| c.id < 10_000).collect();
            prop_assert_eq!(seen, expected);
        }

        /// A merge equals a sort of the union, deduplicated.
        #[test]
        fn merge_is_the_sorted_union(
            a in proptest::collection::btree_set(0u64..500, 0..60),
            b in proptest::collection::btree_set(0u64..500, 0..60),
            limit in 1u32..200,
        ) {
            let mut ta = Timeline::default();
            let mut tb = Timeline::default();
            a.iter().for_each(|&i| { ta.push(id(i), None); });
            b.iter().for_each(|&i| { tb.push(id(i), None); });
            let merged = merge(vec![ta.range(None, None, limit), tb.range(None, None, limit)], limit);
            let mut union: Vec<u64> = a.union(&b).copied().collect();
            union.sort_unstable_by(|x, y| y.cmp(x));
            union.truncate(limit as usize);
            prop_assert_eq!(merged.items.iter().map(|c| c.id).collect::<Vec<_>>(), union);
        }
    }
}
