// Every string of the console UI in English and Simplified Chinese, the choice
// of language (stored choice, else the browser's languages) and formatting of
// times and durations.

const STORAGE_KEY = 'lepton.console.lang';

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'zh-CN', name: '简体中文' },
];

const STRINGS = {
  en: {
    'app.title': 'Lepton console',
    'app.language': 'Language',
    'signIn.heading': 'Sign in to the support console',
    'signIn.name': 'Name',
    'signIn.password': 'Password',
    'signIn.submit': 'Sign in',
    'signIn.busy': 'Signing in…',
    'signOut': 'Sign out',
    'role.agent': 'Agent',
    'role.admin': 'Admin',
    'reload.button': 'Reload bot',
    'reload.busy': 'Reloading…',
    'reload.done': 'The bot was reloaded.',
    'reload.retrained': 'The intent model was retrained.',
    'reload.reindexed': 'The knowledge index was rebuilt.',
    'reload.failed': 'The reload failed, so the running bot is unchanged: {detail}',
    'notice.dismiss': 'Dismiss',
    'nav.conversations': 'Conversations',
    'nav.unrecognised': 'Unrecognised',
    'nav.admin': 'Statistics',
    'conn.connecting': 'Connecting to live updates…',
    'conn.lost': 'Live updates lost. Reconnecting in {seconds} s…',
    'conn.retry': 'Reconnect now',
    'queue.waiting': 'Waiting',
    'queue.mine': 'Mine',
    'queue.others': 'Others',
    'queue.empty': 'Nothing here',
    'queue.with': 'with {agent}',
    'queue.noPreview': 'No message yet',
    'reason.requested': 'Asked for a person',
    'reason.repeated_fallback': 'Bot did not understand',
    'reason.form_exhausted': 'Form answers kept failing',
    'reason.flow_step': 'Flow handed off',
    'presence.online': 'Online',
    'presence.left': 'Customer left',
    'presence.silent': 'Silent for {minutes} min',
    'channel.web': 'Web',
    'channel.telegram': 'Telegram',
    'channel.discord': 'Discord',
    'state.bot': 'Bot is handling it',
    'state.waiting': 'Waiting for an agent',
    'state.agent': 'With {agent}',
    'state.closed': 'Closed',
    'conversation.pick': 'Pick a conversation from the queue.',
    'conversation.loading': 'Loading the conversation…',
    'conversation.details': 'Details',
    'conversation.channel': 'Channel',
    'conversation.language': 'Language',
    'conversation.state': 'State',
    'conversation.presence': 'Customer',
    'conversation.reason': 'Handoff reason',
    'conversation.slots': 'Slots',
    'conversation.noSlots': 'No slots filled',
    'conversation.claimedBy': 'Claimed by {agent}',
    'action.claim': 'Claim',
    'action.transfer': 'Transfer',
    'action.transferTo': 'Transfer to…',
    'action.handBack': 'Hand back to bot',
    'action.close': 'Close',
    'author.customer': 'Customer',
    'author.bot': 'Bot',
    'author.you': 'You',
    'note.label': 'Internal note · {agent}',
    'message.nonText': '[{kind}]',
    'context.intent': 'Intent',
    'context.noIntent': 'no intent (fallback)',
    'context.ranking': 'Other candidates',
    'context.slots': 'Slots set',
    'context.knowledge': 'Knowledge',
    'teach.button': 'Teach the bot',
    'teach.title': 'Teach the bot',
    'teach.message': 'Customer message',
    'teach.intent': 'Intent this message should have matched',
    'teach.intentPlaceholder': 'Pick an intent or type a new name',
    'teach.newIntent': '“{intent}” is not an intent yet. Adding the example creates it.',
    'teach.submit': 'Add example',
    'teach.cancel': 'Cancel',
    'teach.close': 'Close',
    'teach.examples': '{count} examples',
    'teach.busy': 'Adding…',
    'teach.added': 'Added to {file}:{line}.',
    'teach.missingIntent': 'Pick or type an intent.',
    'composer.reply': 'Reply',
    'composer.note': 'Internal note',
    'composer.replyPlaceholder': 'Reply to the customer. Enter sends, Shift+Enter adds a line.',
    'composer.notePlaceholder': 'Internal note, only agents see it. Enter saves.',
    'composer.send': 'Send',
    'composer.addNote': 'Add note',
    'composer.claimFirst': 'Claim the conversation to reply; internal notes work without claiming.',
    'canned.button': 'Canned replies',
    'canned.filter': 'Filter canned replies',
    'canned.empty': 'No canned replies match.',
    'unrecognised.title': 'Unrecognised messages',
    'unrecognised.intro': 'Customer messages the bot answered with its fallback. Teach the bot the intent, or dismiss the message.',
    'unrecognised.empty': 'No unrecognised messages.',
    'unrecognised.dismiss': 'Dismiss',
    'unrecognised.open': 'Open conversation',
    'unrecognised.refresh': 'Refresh',
    'admin.title': 'Statistics',
    'admin.intro': 'Turns on this server over the last six hours, in five-minute buckets. The counts start again when the server restarts.',
    'admin.turns': 'Turns',
    'admin.turnsCount': '{count} turns',
    'admin.fallbackRate': 'Fallback rate',
    'admin.handoffRate': 'Handoff rate',
    'admin.knowledgeRate': 'Answered from the knowledge base',
    'admin.turnsChart': 'Turns per five minutes',
    'admin.ratesChart': 'Fallback and handoff rates',
    'admin.topIntents': 'Top intents',
    'admin.topUnrecognised': 'Top unrecognised questions',
    'admin.noIntents': 'No intent matched yet.',
    'admin.noUnrecognised': 'No unrecognised questions in the last six hours.',
    'error.invalid_credentials': 'Wrong name or password.',
    'error.rate_limited': 'Too many sign-in attempts. Try again in {seconds} s.',
    'error.not_signed_in': 'Your session has ended. Sign in again.',
    'error.csrf_invalid': 'The session token is out of date. Reload the page.',
    'error.forbidden': 'Your role does not allow this.',
    'error.already_claimed': 'Claimed by {agent}.',
    'error.not_owner': 'Only the agent handling this conversation can do that.',
    'error.invalid_intent': 'Invalid intent: {message}',
    'error.duplicate_example': 'This message already is an example of that intent.',
    'error.not_found': 'Not found: {message}',
    'error.learning_unavailable': 'This server cannot add examples: it was started without a bot folder to write to.',
    'error.example_rejected': 'The bot did not validate with this example, so nothing was changed: {message}',
    'error.unknown_agent': 'There is no such agent. Pick one from the list.',
    'error.message_not_found': 'That customer message was not found.',
    'error.origin_not_allowed': 'Open the console from this server’s own address.',
    'error.accounts_unavailable': 'The agent accounts cannot be read. Ask the operator to check the server log.',
    'error.message_too_large': 'The message is too long. Shorten it and send it again.',
    'error.empty_text': 'Type a message first.',
    'error.not_waiting': 'The conversation is closed, so it cannot be claimed.',
    'error.conversation_not_found': 'The conversation was not found. It may have expired.',
    'error.busy': 'The conversation is busy. Try again in a moment.',
    'error.unavailable': 'The server is unavailable. Try again in a moment.',
    'error.reload_unavailable': 'This server cannot reload the bot: it was started without a bot folder.',
    'error.network': 'No connection to the server. Check the network and try again.',
    'error.other': 'The request failed ({status}): {message}',
  },
  'zh-CN': {
    'app.title': 'Lepton 客服台',
    'app.language': '语言',
    'signIn.heading': '登录客服台',
    'signIn.name': '用户名',
    'signIn.password': '密码',
    'signIn.submit': '登录',
    'signIn.busy': '正在登录…',
    'signOut': '退出登录',
    'role.agent': '客服',
    'role.admin': '管理员',
    'reload.button': '重新加载机器人',
    'reload.busy': '正在重新加载…',
    'reload.done': '机器人已重新加载。',
    'reload.retrained': '意图模型已重新训练。',
    'reload.reindexed': '知识库索引已重建。',
    'reload.failed': '重新加载失败，正在运行的机器人保持不变：{detail}',
    'notice.dismiss': '关闭',
    'nav.conversations': '会话',
    'nav.unrecognised': '未识别消息',
    'nav.admin': '统计',
    'conn.connecting': '正在连接实时更新…',
    'conn.lost': '实时更新已断开，{seconds} 秒后重新连接…',
    'conn.retry': '立即重连',
    'queue.waiting': '等待接入',
    'queue.mine': '我的会话',
    'queue.others': '其他客服',
    'queue.empty': '暂无',
    'queue.with': '由 {agent} 处理',
    'queue.noPreview': '还没有消息',
    'reason.requested': '客户要求转人工',
    'reason.repeated_fallback': '机器人多次未能理解',
    'reason.form_exhausted': '表单多次填写失败',
    'reason.flow_step': '流程转人工',
    'presence.online': '在线',
    'presence.left': '客户已离开',
    'presence.silent': '已 {minutes} 分钟未发言',
    'channel.web': '网页',
    'channel.telegram': 'Telegram',
    'channel.discord': 'Discord',
    'state.bot': '机器人处理中',
    'state.waiting': '等待人工接入',
    'state.agent': '{agent} 处理中',
    'state.closed': '已关闭',
    'conversation.pick': '请从左侧队列中选择一个会话。',
    'conversation.loading': '正在加载会话…',
    'conversation.details': '会话信息',
    'conversation.channel': '渠道',
    'conversation.language': '语言',
    'conversation.state': '状态',
    'conversation.presence': '客户',
    'conversation.reason': '转人工原因',
    'conversation.slots': '槽位',
    'conversation.noSlots': '尚未填写槽位',
    'conversation.claimedBy': '已被 {agent} 接入',
    'action.claim': '接入',
    'action.transfer': '转接',
    'action.transferTo': '转接给…',
    'action.handBack': '交还机器人',
    'action.close': '关闭会话',
    'author.customer': '客户',
    'author.bot': '机器人',
    'author.you': '我',
    'note.label': '内部备注 · {agent}',
    'message.nonText': '[{kind}]',
    'context.intent': '意图',
    'context.noIntent': '未识别（兜底回复）',
    'context.ranking': '其他候选',
    'context.slots': '新填槽位',
    'context.knowledge': '知识库',
    'teach.button': '教机器人',
    'teach.title': '教机器人',
    'teach.message': '客户消息',
    'teach.intent': '这条消息应归属的意图',
    'teach.intentPlaceholder': '选择意图或输入新意图名',
    'teach.newIntent': '“{intent}” 还不是意图，添加例句时会新建该意图。',
    'teach.submit': '添加例句',
    'teach.cancel': '取消',
    'teach.close': '关闭',
    'teach.examples': '{count} 条例句',
    'teach.busy': '正在添加…',
    'teach.added': '已添加到 {file}:{line}。',
    'teach.missingIntent': '请选择或输入一个意图。',
    'composer.reply': '回复',
    'composer.note': '内部备注',
    'composer.replyPlaceholder': '回复客户。Enter 发送，Shift+Enter 换行。',
    'composer.notePlaceholder': '内部备注，仅客服可见。Enter 保存。',
    'composer.send': '发送',
    'composer.addNote': '添加备注',
    'composer.claimFirst': '接入会话后才能回复；内部备注无需接入。',
    'canned.button': '快捷回复',
    'canned.filter': '筛选快捷回复',
    'canned.empty': '没有匹配的快捷回复。',
    'unrecognised.title': '未识别消息',
    'unrecognised.intro': '机器人以兜底回复应答的客户消息。可以教机器人正确的意图，或忽略该消息。',
    'unrecognised.empty': '没有未识别的消息。',
    'unrecognised.dismiss': '忽略',
    'unrecognised.open': '打开会话',
    'unrecognised.refresh': '刷新',
    'admin.title': '统计',
    'admin.intro': '本服务器最近六小时的对话轮次，每五分钟一格。服务器重启后重新计数。',
    'admin.turns': '轮次',
    'admin.turnsCount': '{count} 轮',
    'admin.fallbackRate': '兜底率',
    'admin.handoffRate': '转人工率',
    'admin.knowledgeRate': '知识库回答',
    'admin.turnsChart': '每五分钟的轮次',
    'admin.ratesChart': '兜底率与转人工率',
    'admin.topIntents': '最常见意图',
    'admin.topUnrecognised': '最常见的未识别问题',
    'admin.noIntents': '还没有匹配到意图。',
    'admin.noUnrecognised': '最近六小时没有未识别的问题。',
    'error.invalid_credentials': '用户名或密码错误。',
    'error.rate_limited': '登录尝试次数过多，请在 {seconds} 秒后重试。',
    'error.not_signed_in': '登录已失效，请重新登录。',
    'error.csrf_invalid': '会话令牌已过期，请刷新页面。',
    'error.forbidden': '您的角色无权执行此操作。',
    'error.already_claimed': '已被 {agent} 接入。',
    'error.not_owner': '只有正在处理该会话的客服才能执行此操作。',
    'error.invalid_intent': '意图无效：{message}',
    'error.duplicate_example': '这条消息已经是该意图的例句。',
    'error.not_found': '未找到：{message}',
    'error.learning_unavailable': '此服务器无法添加例句：启动时没有指定可写入的机器人目录。',
    'error.example_rejected': '加入这条例句后机器人校验失败，未做任何修改：{message}',
    'error.unknown_agent': '没有这个客服，请从列表中选择。',
    'error.message_not_found': '找不到这条客户消息。',
    'error.origin_not_allowed': '请从本服务器自己的地址打开客服台。',
    'error.accounts_unavailable': '无法读取客服账号，请让运维人员查看服务器日志。',
    'error.message_too_large': '消息太长，请缩短后重新发送。',
    'error.empty_text': '请先输入消息。',
    'error.not_waiting': '会话已关闭，无法接入。',
    'error.conversation_not_found': '找不到该会话，可能已过期。',
    'error.busy': '会话正忙，请稍后重试。',
    'error.unavailable': '服务器暂时不可用，请稍后重试。',
    'error.reload_unavailable': '此服务器无法重新加载机器人：启动时没有指定机器人目录。',
    'error.network': '无法连接服务器，请检查网络后重试。',
    'error.other': '请求失败（{status}）：{message}',
  },
};

let current = 'en';
const listeners = new Set();

/** Picks the UI language: the stored choice, else the first English or Chinese browser language. */
export function detectLanguage() {
  const stored = safeStorageGet(STORAGE_KEY);
  if (stored && STRINGS[stored]) {
    return stored;
  }
  for (const tag of navigator.languages || [navigator.language || 'en']) {
    const lower = tag.toLowerCase();
    if (lower.startsWith('zh')) {
      return 'zh-CN';
    }
    if (lower.startsWith('en')) {
      return 'en';
    }
  }
  return 'en';
}

export function language() {
  return current;
}

/** Switches the UI language, updates `<html lang>` and, when `remember`, stores the choice. */
export function setLanguage(code, remember = false) {
  if (!STRINGS[code]) {
    return;
  }
  current = code;
  document.documentElement.lang = code;
  if (remember) {
    safeStorageSet(STORAGE_KEY, code);
  }
  for (const listener of listeners) {
    listener(code);
  }
}

/** Calls `listener(code)` after every language switch. */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Returns the string for `key` with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  const template = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** Returns `t(key)` when the key exists, else `fallback`. */
export function tOr(key, fallback, params = {}) {
  return key in STRINGS.en ? t(key, params) : fallback;
}

/** Formats a duration in seconds as m:ss, or h:mm:ss from one hour on. */
export function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = String(seconds % 60).padStart(2, '0');
  if (hours > 0) {
    return `${hours}:${String(minutes).padStart(2, '0')}:${rest}`;
  }
  return `${minutes}:${rest}`;
}

/** Formats a millisecond timestamp as a local time of day, with the date when it is not today. */
export function formatTime(millis) {
  const date = new Date(millis);
  const sameDay = date.toDateString() === new Date().toDateString();
  const options = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  return date.toLocaleString(current, options);
}

function safeStorageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch (error) {
    return null;
  }
}

function safeStorageSet(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (error) {
    // Storage can be disabled; the choice then lasts for this page only.
  }
}
