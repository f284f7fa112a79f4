//! Stop words: function words, pronouns, question words and greetings that carry
//! no information about which entry a customer means. Dropping them from both
//! entries and queries keeps "how do I return an item" from being judged on
//! "how", "do" and "I".
//!
//! The lists are matched after lowercasing and before stemming, so they contain
//! surface forms. Chinese entries are words as jieba cuts them.

/// English stop words: the Lucene English list plus pronouns, auxiliary verbs,
/// question words and greetings.
pub(crate) const ENGLISH_STOP_WORDS: &[&str] = &[
    // The Lucene English list.
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    // Pronouns and determiners.
    "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his", "she",
    "her", "hers", "its", "them", "theirs", "those", "some", "any", "all", "each", "every",
    // Auxiliary and modal verbs, with the pieces of their contractions.
    "am", "been", "being", "were", "do", "does", "did", "doing", "done", "have", "has", "had", "having", "can", "could",
    "would", "should", "shall", "may", "might", "must", "s", "t", "d", "ll", "m", "re", "ve", "don", "doesn", "didn",
    "isn", "aren", "wasn", "weren", "can't", "cannot", "won", "wouldn", "shouldn", "couldn",
    // Question words and fillers.
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "about", "from", "so", "too", "very",
    "just", "also", "than", "out", "up", "get", "got", "want", "need", "know", "tell", "please", "hi", "hello", "hey",
    "thanks", "thank", "ok", "okay",
];

/// Chinese stop words: particles, pronouns, copulas, modal verbs, question words
/// and greetings.
pub(crate) const CHINESE_STOP_WORDS: &[&str] = &[
    // Particles and conjunctions.
    "的",
    "了",
    "着",
    "过",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "嘛",
    "哦",
    "哈",
    "么",
    "和",
    "与",
    "及",
    "或",
    "或者",
    "也",
    "都",
    "就",
    "还",
    "又",
    "而",
    "把",
    "被",
    "给",
    "对",
    "从",
    "向",
    "在",
    "于",
    "是",
    "有",
    "个",
    "这",
    "那",
    "这个",
    "那个",
    "这些",
    "那些",
    "一个",
    "一下",
    "一些",
    // Pronouns.
    "我",
    "我们",
    "你",
    "你们",
    "您",
    "他",
    "他们",
    "她",
    "她们",
    "它",
    "它们",
    "我的",
    "你的",
    "您的",
    "自己",
    // Modal verbs and wishes.
    "想",
    "要",
    "想要",
    "需要",
    "能",
    "能否",
    "可以",
    "可否",
    "会",
    "应该",
    "得",
    // Question words.
    "什么",
    "怎么",
    "怎么样",
    "怎样",
    "如何",
    "为什么",
    "为何",
    "哪",
    "哪里",
    "哪儿",
    "哪个",
    "在哪",
    "在哪里",
    "多少",
    "多久",
    "什么时候",
    "何时",
    "几",
    "是否",
    "请问",
    "请",
    // Motion verbs used as particles (`到哪了`, `能到`).
    "到",
    // Greetings.
    "你好",
    "您好",
    "谢谢",
    "感谢",
    "好的",
];
