//! Splits Markdown articles into sections at their headings.
//!
//! Each ATX heading (`# Title` up to `###### Title`) and each setext heading (a
//! text line underlined with `===` or `---`) starts a section that runs to the
//! next heading of any level. Lines inside fenced code blocks are never headings.
//! Text before the first heading forms a section of its own whose source is the
//! bare path. Sections without text (a heading followed directly by another) are
//! left out, since they have no answer to give.

use bot_core::Article;

/// One section of an article: the text under a heading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArticleSection {
    /// `PATH#SLUG`, or `PATH` for text before the first heading.
    pub source: String,
    /// Headings from the top level down to this section's own heading.
    pub headings: Vec<String>,
    /// The section's Markdown text without its heading line, trimmed.
    pub text: String,
}

/// Splits `article` into its sections, in document order.
pub fn split_sections(article: &Article) -> Vec<ArticleSection> {
    let mut splitter = Splitter::new(&article.path);
    let lines: Vec<&str> = article.markdown.lines().collect();
    let mut fence: Option<Fence> = None;
    let mut index = 0;

    while index < lines.len() {
        let line = lines[index];

        if let Some(open) = &fence {
            if open.is_closed_by(line) {
                fence = None;
            }
            splitter.push_line(line);
            index += 1;
            continue;
        }
        if let Some(opened) = Fence::opened_by(line) {
            fence = Some(opened);
            splitter.push_line(line);
            index += 1;
            continue;
        }
        if let Some((level, title)) = atx_heading(line) {
            splitter.start_section(level, title);
            index += 1;
            continue;
        }
        if let Some(level) = lines.get(index + 1).and_then(|next| setext_level(line, next)) {
            splitter.start_section(level, line.trim());
            index += 2;
            continue;
        }

        splitter.push_line(line);
        index += 1;
    }

    splitter.finish()
}

/// Collects sections while the lines are scanned.
struct Splitter<'a> {
    path: &'a str,
    /// `(level, title)` of the open headings, outermost first.
    stack: Vec<(usize, String)>,
    lines: Vec<&'a str>,
    slugs: SlugCounter,
    current_slug: Option<String>,
    sections: Vec<ArticleSection>,
}

impl<'a> Splitter<'a> {
    fn new(path: &'a str) -> Self {
        Self {
            path,
            stack: Vec::new(),
            lines: Vec::new(),
            slugs: SlugCounter::default(),
            current_slug: None,
            sections: Vec::new(),
        }
    }

    fn push_line(&mut self, line: &'a str) {
        self.lines.push(line);
    }

    fn start_section(&mut self, level: usize, title: &str) {
        self.close_section();

        while self.stack.last().is_some_and(|(open, _)| *open >= level) {
            self.stack.pop();
        }
        self.stack.push((level, title.to_owned()));
        self.current_slug = Some(self.slugs.unique(&slugify(title)));
    }

    fn close_section(&mut self) {
        let text = unwrap_paragraphs(&self.lines).trim().to_owned();
        self.lines.clear();
        if text.is_empty() {
            return;
        }

        let source = match &self.current_slug {
            Some(slug) => format!("{}#{}", self.path, slug),
            None => self.path.to_owned(),
        };
        let headings = self.stack.iter().map(|(_, title)| title.clone()).collect();
        self.sections.push(ArticleSection { source, headings, text });
    }

    fn finish(mut self) -> Vec<ArticleSection> {
        self.close_section();
        self.sections
    }
}

/// Joins the lines of each paragraph, which Markdown authors wrap at a fixed
/// width, so an answer reads as running text in a chat window. Blank lines,
/// list items, quotes, table rows, code blocks and hard breaks (two trailing
/// spaces) keep their line breaks. Chinese lines join without a space.
fn unwrap_paragraphs(lines: &[&str]) -> String {
    let mut text = String::new();
    let mut in_fence = false;
    let mut previous: Option<&str> = None;
    for &line in lines {
        let trimmed = line.trim();
        let fence_marker = trimmed.starts_with("```") || trimmed.starts_with("~~~");
        let keeps_break = in_fence
            || fence_marker
            || trimmed.is_empty()
            || is_list_item_or_quote(trimmed)
            || trimmed.starts_with('|')
            || strip_indent(line).is_none();
        let joins = !keeps_break && previous.is_some_and(|p| !p.trim().is_empty() && !p.ends_with("  ") && !p.trim().starts_with('|'));

        match previous {
            None => {}
            Some(_) if !joins => text.push('\n'),
            Some(p) => {
                let cjk_seam = p.trim_end().chars().last().is_some_and(is_cjk) && trimmed.chars().next().is_some_and(is_cjk);
                if !cjk_seam {
                    text.push(' ');
                }
            }
        }
        text.push_str(if joins { trimmed } else { line.trim_end() });
        if fence_marker {
            in_fence = !in_fence;
        }
        previous = Some(line);
    }
    text
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF)
}

/// Returns `(level, title)` when `line` is an ATX heading such as `## Returns ##`.
fn atx_heading(line: &str) -> Option<(usize, &str)> {
    let trimmed = strip_indent(line)?;
    let level = trimmed.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }

    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }

    let title = rest.trim();
    let title = match title.trim_end_matches('#') {
        stripped if stripped.is_empty() => stripped,
        stripped if stripped.ends_with([' ', '\t']) => stripped.trim_end(),
        _ => title,
    };
    Some((level, title))
}

/// Returns the heading level when `line` is text underlined by `underline`
/// (`===` for level 1, `---` for level 2).
fn setext_level(line: &str, underline: &str) -> Option<usize> {
    let text = strip_indent(line)?;
    if text.trim().is_empty() || atx_heading(line).is_some() || is_list_item_or_quote(text) {
        return None;
    }

    let marker = strip_indent(underline)?.trim_end();
    let level = match marker.chars().next()? {
        '=' => 1,
        '-' => 2,
        _ => return None,
    };
    let uniform = marker.chars().all(|c| c == marker.chars().next().unwrap_or(' '));
    uniform.then_some(level)
}

fn is_list_item_or_quote(text: &str) -> bool {
    let bullet = text.starts_with(['-', '*', '+', '>']);
    let ordered = text.split_once(['.', ')']).is_some_and(|(number, _)| {
        !number.is_empty() && number.len() <= 9 && number.bytes().all(|b| b.is_ascii_digit())
    });
    bullet || ordered
}

/// Removes up to three spaces of indentation; four or more make a code block.
fn strip_indent(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|&b| b == b' ').count();
    (spaces <= 3).then(|| &line[spaces..])
}

/// An open fenced code block: its marker character and length.
struct Fence {
    marker: char,
    length: usize,
}

impl Fence {
    fn opened_by(line: &str) -> Option<Self> {
        let text = strip_indent(line)?;
        let marker = text.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let length = text.chars().take_while(|c| *c == marker).count();
        let info = &text[length..];
        let valid = length >= 3 && !(marker == '`' && info.contains('`'));
        valid.then_some(Self { marker, length })
    }

    fn is_closed_by(&self, line: &str) -> bool {
        let Some(text) = strip_indent(line) else {
            return false;
        };
        let length = text.chars().take_while(|c| *c == self.marker).count();
        length >= self.length && text[length..].trim().is_empty()
    }
}

/// Turns a heading into a URL fragment the way GitHub does: lowercase, letters,
/// digits, `-` and `_` kept, spaces turned into `-`, everything else removed.
pub fn slugify(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Makes repeated slugs unique by appending `-1`, `-2`, ... as GitHub does.
#[derive(Default)]
struct SlugCounter {
    seen: std::collections::HashMap<String, usize>,
}

impl SlugCounter {
    fn unique(&mut self, slug: &str) -> String {
        let count = self.seen.entry(slug.to_owned()).or_insert(0);
        let unique = match *count {
            0 => slug.to_owned(),
            n => format!("{slug}-{n}"),
        };
        *count += 1;
        unique
    }
}

#[cfg(test)]
mod tests {
    use bot_core::Lang;

    use super::*;

    fn sections(markdown: &str) -> Vec<ArticleSection> {
        split_sections(&Article { path: "help.md".to_owned(), lang: Lang::new("en"), markdown: markdown.to_owned() })
    }

    fn sources(markdown: &str) -> Vec<String> {
        sections(markdown).into_iter().map(|section| section.source).collect()
    }

    #[test]
    fn split_atx_headings_give_sources() {
        let markdown = "# Help\nIntro.\n## Returns\nSend it back.\n## Refund fees\nNone.";
        assert_eq!(sources(markdown), ["help.md#help", "help.md#returns", "help.md#refund-fees"]);
    }

    #[test]
    fn wrapped_paragraph_lines_are_joined() {
        let text = unwrap_paragraphs(&["Send it back and we", "refund you.", "", "- one", "- two", "", "退货后我们", "会退款。"]);
        assert_eq!(text, "Send it back and we refund you.\n\n- one\n- two\n\n退货后我们会退款。");
    }

    #[test]
    fn code_blocks_keep_their_lines() {
        let text = unwrap_paragraphs(&["```", "a", "b", "```"]);
        assert_eq!(text, "```\na\nb\n```");
    }

    #[test]
    fn split_text_before_heading_has_bare_path() {
        assert_eq!(sources("Welcome.\n# Returns\nSend it back."), ["help.md", "help.md#returns"]);
    }

    #[test]
    fn split_section_text_excludes_heading() {
        let split = sections("## Returns\n\nSend it back.\n");
        assert_eq!(split[0].text, "Send it back.");
    }

    #[test]
    fn split_heading_path_includes_parents() {
        let split = sections("# Shop\n## Returns\nSend it back.\n### Fees\nNone.\n## Hours\n9-5.");
        let headings: Vec<Vec<String>> = split.into_iter().map(|section| section.headings).collect();
        assert_eq!(headings, [vec!["Shop", "Returns"], vec!["Shop", "Returns", "Fees"], vec!["Shop", "Hours"]]);
    }

    #[test]
    fn split_empty_sections_left_out() {
        assert_eq!(sources("# Shop\n## Returns\nSend it back."), ["help.md#returns"]);
    }

    #[test]
    fn split_fenced_hash_lines_not_headings() {
        let split = sections("## Shell\n```sh\n# not a heading\n```\nDone.");
        assert_eq!(split.len(), 1);
    }

    #[test]
    fn split_setext_headings() {
        assert_eq!(
            sources("Returns\n=======\nSend it back.\n\nFees\n----\nNone."),
            ["help.md#returns", "help.md#fees"]
        );
    }

    #[test]
    fn split_list_item_before_rule_not_heading() {
        assert_eq!(sources("# Steps\n- one\n---\nmore"), ["help.md#steps"]);
    }

    #[test]
    fn split_duplicate_headings_numbered() {
        let markdown = "## FAQ\nA.\n## FAQ\nB.\n## FAQ\nC.";
        assert_eq!(sources(markdown), ["help.md#faq", "help.md#faq-1", "help.md#faq-2"]);
    }

    #[test]
    fn split_closing_hashes_removed() {
        assert_eq!(sources("## Returns ##\nSend it back."), ["help.md#returns"]);
    }

    #[test]
    fn split_hash_without_space_is_text() {
        assert_eq!(sources("#hashtag\ntext"), ["help.md"]);
    }

    #[test]
    fn slugify_keeps_chinese_and_drops_punctuation() {
        assert_eq!(slugify("退款 & Returns (EU)"), "退款--returns-eu");
    }
}
