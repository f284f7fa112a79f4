//! Knowledge sources: the `faq:` section and the Markdown articles.

use std::collections::BTreeSet;
use std::path::Path;

use bot_core::bot::KNOWLEDGE_INTENT;
use bot_core::{Article, FaqEntry, Lang};

use crate::convert::Converter;
use crate::sections::Definition;
use crate::settings::ArticleFolder;
use crate::source::{find_files, read_limited, relative_path, too_large, SourcesHasher};
use crate::LoadError;

const FAQ_FIELDS: [&str; 5] = ["lang", "question", "variants", "answer", "tags"];

impl Converter<'_, '_> {
    pub fn convert_faq(&mut self, default_lang: &Lang) -> Vec<FaqEntry> {
        let sections = self.sections;
        let faq = sections.faq.definitions.iter().filter_map(|definition| self.convert_faq_entry(definition, default_lang)).collect();
        for duplicate in &sections.faq.duplicates {
            self.check_discarded(|converter| drop(converter.convert_faq_entry(duplicate, default_lang)));
        }
        faq
    }

    fn convert_faq_entry(&mut self, definition: &Definition<'_>, default_lang: &Lang) -> Option<FaqEntry> {
        let what = format!("FAQ entry `{}`", definition.name);
        let fields = self.cx.fields(definition.value, definition.key.loc, &what, &FAQ_FIELDS)?;
        let lang = match fields.get("lang") {
            Some(node) => self.language(node),
            None => Some(default_lang.clone()),
        };
        let question = fields.require(&mut self.cx, "question").and_then(|n| Some((self.cx.text(n, "a question")?, n.loc)));
        let answer = fields.require(&mut self.cx, "answer").and_then(|n| self.cx.text(n, "an answer"));
        let variants = match fields.get("variants") {
            Some(node) => self.cx.strings(node, "a question variant"),
            None => Some(Vec::new()),
        };
        let tags = match fields.get("tags") {
            Some(node) => self.cx.strings(node, "a tag"),
            None => Some(Vec::new()),
        };
        let (question, question_loc) = question?;
        let variants = variants?;
        let place = self.cx.example_place(question_loc);
        self.example_places.insert(KNOWLEDGE_INTENT, &question, place);
        for (variant, loc) in &variants {
            let place = self.cx.example_place(*loc);
            self.example_places.insert(KNOWLEDGE_INTENT, variant, place);
        }
        Some(FaqEntry {
            id: definition.name.clone(),
            lang: lang?,
            question,
            variants: variants.into_iter().map(|(text, _)| text).collect(),
            answer: answer?,
            tags: tags?.into_iter().map(|(text, _)| text).collect(),
        })
    }

    /// Reads the `*.md` files under the article folders. The language comes from a
    /// suffix such as `returns.zh.md`, else it is `default_lang`.
    pub fn read_articles(
        &mut self,
        bot_dir: &Path,
        folders: &[ArticleFolder],
        default_lang: &Lang,
        hasher: &mut SourcesHasher,
    ) -> Result<Vec<Article>, LoadError> {
        let mut articles = Vec::new();
        let mut seen = BTreeSet::new();
        for folder in folders {
            let path = bot_dir.join(&folder.path);
            if !path.is_dir() {
                if let Some(loc) = folder.loc {
                    let message = format!("article folder `{}` is not a folder inside the bot folder; create it or remove it from knowledge.articles", folder.path);
                    self.cx.error(loc, message);
                }
                continue;
            }
            for file in find_files(&path, &["md"], &mut self.cx.diagnostics)? {
                let relative = relative_path(bot_dir, &file);
                if !seen.insert(relative.clone()) {
                    continue;
                }
                let Some(bytes) = read_limited(&file)? else {
                    self.cx.diagnostics.push(too_large(file));
                    continue;
                };
                hasher.add(&relative, &bytes);
                let Ok(markdown) = String::from_utf8(bytes) else {
                    self.cx.error_at_path(file, "article is not valid UTF-8; save it as UTF-8");
                    continue;
                };
                if let Some(lang) = self.article_language(&file, default_lang) {
                    articles.push(Article { path: relative, lang, markdown });
                }
            }
        }
        Ok(articles)
    }

    fn article_language(&mut self, file: &Path, default_lang: &Lang) -> Option<Lang> {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let Some((_, suffix)) = stem.rsplit_once('.') else { return Some(default_lang.clone()) };
        let Some(lang) = Lang::from_tag(suffix) else {
            return Some(default_lang.clone());
        };
        let Some(languages) = &self.languages else { return Some(lang) };
        if languages.contains(&lang) {
            return Some(lang);
        }
        let declared: Vec<&str> = languages.iter().map(Lang::as_str).collect();
        let message = format!(
            "article language `{lang}` (from the file name) is not declared in settings.languages ({}); add it there or rename the file",
            declared.join(", ")
        );
        self.cx.error_at_path(file.to_path_buf(), message);
        None
    }
}
