//! Redis-style glob patterns over keys: `*`, `?`, `[abc]`, `[^a-z]` and `\` escapes.

/// Whether `text` matches `pattern` as Redis's `stringmatch` would.
///
/// Runs in O(pattern × text) at worst: a `*` remembers where it matched last, and a later
/// mismatch retries from there with one more byte, never nesting (no exponential cases).
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and where in the text its match ends now.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(&pattern[p..], text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(2),
            Some(&c) => (c == text[t]).then_some(1),
            None => None,
        };
        match step {
            Some(width) => {
                p += width;
                t += 1;
            }
            None => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `byte` against the class at the start of `pattern` (`[...]`); the pattern
/// bytes it spans if it matches. An unclosed `[` is taken as a literal.
fn class(pattern: &[u8], byte: u8) -> Option<usize> {
    let mut i = 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(i) {
            None => return (byte == b'[').then_some(1),
            Some(b']') if i > 1 + usize::from(negated) => break,
            Some(b'\\') if i + 1 < pattern.len() => {
                hit |= pattern[i + 1] == byte;
                i += 2;
            }
            Some(&low)
                if pattern.get(i + 1) == Some(&b'-')
                    && i + 2 < pattern.len()
                    && pattern[i + 2] != b']' =>
            {
                let high = pattern[i + 2];
                let (low, high) = if low <= high {
                    (low, high)
                } else {
                    (high, low)
                };
                hit |= (low..=high).contains(&byte);
                i += 3;
            }
            Some(&c) => {
                hit |= c == byte;
                i += 1;
            }
        }
    }
    (hit != negated).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_as_in_redis() {
        let yes = [
            ("*", ""),
            ("*", "anything"),
            ("cache:*", "cache:user:1"),
            ("h?llo", "hello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("a\\*b", "a*b"),
            ("*:1", "user:1"),
            ("a*b*c", "aXXbYYc"),
            ("{user:42}*", "{user:42}.cart"),
        ];
        let no = [
            ("cache:*", "cach:1"),
            ("h?llo", "hllo"),
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("a\\*b", "aXb"),
            ("a*b*c", "aXXbYY"),
            ("", "x"),
        ];
        for (pattern, text) in yes {
            assert!(
                matches(pattern.as_bytes(), text.as_bytes()),
                "{pattern} ~ {text}"
            );
        }
        for (pattern, text) in no {
            assert!(
                !matches(pattern.as_bytes(), text.as_bytes()),
                "{pattern} !~ {text}"
            );
        }
    }

    #[test]
    fn many_stars_against_a_long_key_stay_linear() {
        let pattern = "*a".repeat(30) + "b";
        let text = "a".repeat(60_000);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }
}
