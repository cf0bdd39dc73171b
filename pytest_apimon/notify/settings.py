"""The `notify:` section of config.yaml: parsed into frozen dataclasses, every problem a ConfigError.

    notify:
      send_on: change             # change (default: NEW, reminders, RECOVERED) | failure | always
      severity:                   # owners (owner: in documents / services) are @-mentioned by severity
        default: P1               # for interfaces and services that set none
        P0: {mention: always, remind_every: 30m}   # always: NEW and every reminder
        P1: {mention: new}        # new: NEW only (default)
        P2: {mention: never, remind_every: 4h}     # never @-mentioned
      language: zh                # optional override of report.language
      outbox_max: 50              # undelivered reports kept (oldest dropped with a note)
      max_messages: 4             # more parts than this -> summary message + the report as a file
      max_wait: 90s               # total sleeping (pacing, 45009, backoff) one delivery may do
      timeout: 10s                # per HTTP request: each read and the whole exchange (total deadline)
      wecom:
        - name: default
          webhook: ${WECOM_KEY}   # the key, or the whole webhook URL
          services: []            # empty = the full report; else only these services' problems
          mention: {userids: [zhangsan, "@all"], mobiles: ["13800001111"],
                    services: {nurse: {userids: [lisi]}}}   # per-service: only when that service has problems
          message_type: markdown  # markdown | markdown_v2
          base_url: https://qyapi.weixin.qq.com   # for testing / proxies only
      dingtalk:                   # 钉钉 custom group robots (same routing and mentions; mobiles or userids)
        - name: ops
          webhook: ${DINGTALK_WEBHOOK}   # https://oapi.dingtalk.com/robot/send?access_token=… or the token
          secret: ${DINGTALK_SECRET}     # optional: the SEC… signing secret (加签)
      feishu:                     # 飞书 custom group robots (mentions: open_id / user_id, or "@all")
        - name: ops
          webhook: ${FEISHU_WEBHOOK}     # https://open.feishu.cn/open-apis/bot/v2/hook/… or the token
          secret: ${FEISHU_SECRET}       # optional: the signing secret (签名校验)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._config_reader import SectionReader, at_least, positive_duration
from ..config import parse_duration
from ..loader import Path_, did_you_mean

SEND_ON = ("failure", "always", "change")
SEVERITIES = ("P0", "P1", "P2")
MENTION_RULES = ("always", "new", "never")
DEFAULT_MENTION_ON = {"P0": "always", "P1": "new", "P2": "never"}
LANGUAGES = ("zh", "en")
MESSAGE_TYPES = ("markdown", "markdown_v2")
DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
SEND_PATH = "/cgi-bin/webhook/send"
UPLOAD_PATH = "/cgi-bin/webhook/upload_media"
DINGTALK_BASE_URL = "https://oapi.dingtalk.com"
DINGTALK_SEND_PATH = "/robot/send"
FEISHU_BASE_URL = "https://open.feishu.cn"
FEISHU_HOOK_PATH = "/open-apis/bot/v2/hook/"
_CHAT_TOKEN = re.compile(r"[0-9A-Za-z_-]{16,128}")

_NOTIFY_KEYS = ("send_on", "language", "outbox_max", "max_messages", "max_wait", "timeout", "wecom", "dingtalk",
                "feishu", "severity")
_SEVERITY_KEYS = ("default", *SEVERITIES)
_LEVEL_KEYS = ("mention", "remind_every")
_ROBOT_KEYS = ("name", "webhook", "services", "mention", "message_type", "base_url")
_CHAT_ROBOT_KEYS = ("name", "webhook", "secret", "services", "mention", "base_url")
_MENTION_KEYS = ("userids", "mobiles", "services")
# Real keys are UUIDs; letters beyond hex are tolerated (docs show redacted keys like '7xxx').
_KEY = re.compile(r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}")
_MOBILE = re.compile(r"\+?\d{5,15}")
_USERID = re.compile(r"[^\s<>@]{1,64}")
_OTHER_ROBOTS = {"dingtalk": "DingTalk", "feishu": "Feishu", "larksuite": "Lark", "slack": "Slack"}


def mask_key(key: str) -> str:
    """How a key appears in messages and logs: enough to recognise, never enough to use."""
    return f"{key[:4]}…({len(key)} chars)" if len(key) > 8 else "…"


@dataclass(frozen=True)
class Mention:
    userids: tuple[str, ...] = ()  # may include "@all"
    mobiles: tuple[str, ...] = ()  # may include "@all"

    def __bool__(self) -> bool:
        return bool(self.userids or self.mobiles)

    def merged(self, other: Mention) -> Mention:
        return Mention(tuple(dict.fromkeys(self.userids + other.userids)),
                       tuple(dict.fromkeys(self.mobiles + other.mobiles)))


def mention_for(robot: WeComRobot, n: Any) -> Mention:
    """Who one robot's message @-mentions: the robot's own lists (and per-service lists) when the message
    alerts (`n.mention`; legacy: it has problems), plus the owners the alert logic chose by severity."""
    from ..ownership import is_mobile

    apply = n.mention if n.mention is not None else n.failed != 0
    base = robot.mentions_for(n.services) if apply else Mention()
    owners = Mention(tuple(o for o in n.owners if not is_mobile(o)), tuple(o for o in n.owners if is_mobile(o)))
    return base.merged(owners)


@dataclass(frozen=True)
class WeComRobot:
    name: str
    key: str = field(repr=False)  # secret: kept out of repr, logs and error messages
    base_url: str = DEFAULT_BASE_URL
    services: tuple[str, ...] = ()  # empty = full report
    mention: Mention = field(default_factory=Mention)
    service_mentions: Mapping[str, Mention] = field(default_factory=dict)
    message_type: str = "markdown"

    @property
    def send_url(self) -> str:
        return f"{self.base_url}{SEND_PATH}?key={self.key}"

    def upload_url(self, media_type: str = "file") -> str:
        return f"{self.base_url}{UPLOAD_PATH}?key={self.key}&type={media_type}"

    def mentions_for(self, problem_services: tuple[str, ...]) -> Mention:
        """Robot-wide mentions plus those of every service that has problems in this run."""
        out = self.mention
        for svc in problem_services:
            if svc in self.service_mentions:
                out = out.merged(self.service_mentions[svc])
        return out


@dataclass(frozen=True)
class DingTalkRobot(WeComRobot):
    """A DingTalk (钉钉) custom group robot; key is its access_token, secret the optional SEC… signing secret."""

    secret: str | None = field(default=None, repr=False)
    base_url: str = DINGTALK_BASE_URL

    @property
    def send_url(self) -> str:
        return f"{self.base_url}{DINGTALK_SEND_PATH}?access_token={self.key}"


@dataclass(frozen=True)
class FeishuRobot(WeComRobot):
    """A Feishu (飞书) custom group robot; key is the hook token, secret the optional signing secret."""

    secret: str | None = field(default=None, repr=False)
    base_url: str = FEISHU_BASE_URL

    @property
    def send_url(self) -> str:
        return f"{self.base_url}{FEISHU_HOOK_PATH}{self.key}"


@dataclass(frozen=True)
class NotifySettings:
    send_on: str = "change"
    language: str | None = None  # None: use report.language
    outbox_max: int = 50
    max_messages: int = 4
    max_wait: float = 90.0
    timeout: float = 10.0
    wecom: tuple[WeComRobot, ...] = ()
    # Owners and severity (ownership.py): the severity of interfaces that set none, and per severity when
    # owners are @-mentioned (always: NEW and reminders; new: NEW only; never) and how often reminders repeat.
    default_severity: str = "P1"
    mention_on: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MENTION_ON))
    remind_every: Mapping[str, float] = field(default_factory=dict)  # severity -> seconds (else alerts.remind_every)
    dingtalk: tuple[DingTalkRobot, ...] = ()
    feishu: tuple[FeishuRobot, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.wecom or self.dingtalk or self.feishu)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to mask in every output (add them to Config.secrets)."""
        chat: list[DingTalkRobot | FeishuRobot] = [*self.dingtalk, *self.feishu]
        return tuple([r.key for r in self.wecom] + [r.key for r in chat] + [r.secret for r in chat if r.secret])


def parse_webhook(value: str) -> tuple[str, str | None]:
    """(key, base_url taken from a pasted URL or None). Raises ValueError with an actionable message."""
    text = value.strip().strip("'\"").strip()
    if not text:
        raise ValueError("the webhook is empty: set it to the robot's key or its webhook URL "
                         "(e.g. webhook: ${WECOM_KEY} with WECOM_KEY exported)")
    if "://" in text or text.startswith("qyapi.") or "/" in text:
        parts = urlsplit(text if "://" in text else "https://" + text)
        host = (parts.hostname or "").lower()
        for word, product in _OTHER_ROBOTS.items():
            if word in host:
                section = {"dingtalk": "notify.dingtalk", "feishu": "notify.feishu", "larksuite": "notify.feishu"}
                where = f" (put it under {section[word]})" if word in section else ""
                raise ValueError(f"this is a {product} webhook ({host}), not a WeCom (企业微信) group robot{where}; "
                                 "copy the URL from the WeCom group's robot settings (…/cgi-bin/webhook/send?key=…)")
        keys = parse_qs(parts.query).get("key", [])
        if not keys or not keys[0].strip():
            raise ValueError(f"the webhook URL ({parts.scheme}://{host}{parts.path}) has no 'key=' parameter; paste "
                             "the whole robot URL (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…) "
                             "or just the key")
        if not parts.path.rstrip("/").endswith(SEND_PATH):
            raise ValueError(f"the webhook URL path is {parts.path or '/'!r}, expected {SEND_PATH!r}; paste the "
                             "robot's webhook URL as shown in the group robot settings, or just its key")
        key = keys[0].strip()
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')[: -len(SEND_PATH)]}"
        _check_key(key)
        return key, base
    _check_key(text)
    return text, None


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValueError(f"the webhook key {mask_key(key)} does not look like a WeCom robot key (36 characters "
                         "like 693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa, the part after 'key=' in the robot's webhook "
                         "URL); check for a truncated copy or stray characters")


class _Reader(SectionReader):
    def string_list(self, value: Any, path: Path_) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str | int) and not isinstance(value, bool):
            value = [value]  # a single value is a one-item list
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            item = self.sub(item, path + (i,))
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.fail(path + (i,), f"expected a string, got {item!r}")
            out.append(str(item).strip())
        return out

    def choice(self, section: dict[str, Any], path: Path_, key: str, choices: tuple[str, ...], default: Any) -> Any:
        if section.get(key) is None:
            return default
        text = str(self.sub(section[key], path + (key,))).strip()
        if text not in choices:
            hint = f" (values are lowercase: '{text.lower()}')" if text.lower() in choices else did_you_mean(
                text, choices)
            self.fail(path + (key,), f"expected one of {', '.join(choices)}, got {text!r}{hint}")
        return text

    def number(self, section: dict[str, Any], path: Path_, key: str, default: Any, convert: Any) -> Any:
        return self.value(section, path, key, convert, default)

    def mention(self, raw: Any, path: Path_, nested: bool) -> tuple[Mention, dict[str, Mention]]:
        section = self.mapping(raw, path, _MENTION_KEYS if nested else _MENTION_KEYS[:2])
        userids = []
        for i, uid in enumerate(self.string_list(section.get("userids"), path + ("userids",))):
            if uid.lower() == "@all":
                uid = "@all"
            elif uid.startswith("@") or not _USERID.fullmatch(uid):
                self.fail(path + ("userids", i), f"{uid!r} is not a WeCom userid: write the account id without "
                                                 "'@' (e.g. zhangsan), or \"@all\" for everyone")
            userids.append(uid)
        mobiles = []
        for i, mobile in enumerate(self.string_list(section.get("mobiles"), path + ("mobiles",))):
            compact = re.sub(r"[\s-]", "", mobile)
            if compact.lower() == "@all":
                compact = "@all"
            elif not _MOBILE.fullmatch(compact):
                self.fail(path + ("mobiles", i), f"{mobile!r} is not a mobile number (digits, e.g. \"13800001111\"; "
                                                 "quote it in YAML), or \"@all\"")
            mobiles.append(compact)
        per_service: dict[str, Mention] = {}
        services = self.mapping(section.get("services"), path + ("services",), tuple(
            str(k) for k in (section.get("services") or {})))
        for svc, sub in services.items():
            per_service[str(svc)] = self.mention(sub, path + ("services", str(svc)), nested=False)[0]
        return Mention(tuple(dict.fromkeys(userids)), tuple(dict.fromkeys(mobiles))), per_service

    def robot(self, raw: Any, path: Path_, index: int) -> WeComRobot:
        section = self.mapping(raw, path, _ROBOT_KEYS)
        name = str(self.sub(section.get("name") or ("default" if index == 0 else f"robot{index + 1}"),
                            path + ("name",))).strip()
        if "webhook" not in section:
            self.fail(path, "missing 'webhook': the robot's key or webhook URL (e.g. webhook: ${WECOM_KEY})")
        webhook = self.sub(section["webhook"], path + ("webhook",))
        if not isinstance(webhook, str):
            self.fail(path + ("webhook",), "expected the robot's key or webhook URL as a string")
        try:
            key, url_base = parse_webhook(webhook)
        except ValueError as exc:
            self.fail(path + ("webhook",), f"robot '{name}': {exc}")
        base = url_base or DEFAULT_BASE_URL
        if section.get("base_url") is not None:
            base = str(self.sub(section["base_url"], path + ("base_url",))).strip().rstrip("/")
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.fail(path + ("base_url",), f"expected an http(s) URL like {DEFAULT_BASE_URL}, got {base!r}")
        mention, per_service = self.mention(section.get("mention"), path + ("mention",), nested=True)
        return WeComRobot(
            name=name,
            key=key,
            base_url=base,
            services=tuple(dict.fromkeys(self.string_list(section.get("services"), path + ("services",)))),
            mention=mention,
            service_mentions=per_service,
            message_type=self.choice(section, path, "message_type", MESSAGE_TYPES, "markdown"),
        )

    def chat_robot(self, raw: Any, path: Path_, index: int, platform: str) -> WeComRobot:
        """A DingTalk or Feishu robot: webhook URL or bare token, optional signing secret."""
        section = self.mapping(raw, path, _CHAT_ROBOT_KEYS)
        name = str(self.sub(section.get("name") or ("default" if index == 0 else f"robot{index + 1}"),
                            path + ("name",))).strip()
        if "webhook" not in section:
            self.fail(path, f"missing 'webhook': the robot's webhook URL or token (e.g. webhook: "
                            f"${{{platform.upper()}_WEBHOOK}})")
        webhook = self.sub(section["webhook"], path + ("webhook",))
        if not isinstance(webhook, str):
            self.fail(path + ("webhook",), "expected the robot's webhook URL or token as a string")
        try:
            token, url_base = parse_chat_webhook(webhook, platform)
        except ValueError as exc:
            self.fail(path + ("webhook",), f"robot '{name}': {exc}")
        secret = section.get("secret")
        if secret is not None:
            secret = self.sub(secret, path + ("secret",))
            if not isinstance(secret, str) or not secret.strip():
                self.fail(path + ("secret",), "expected the signing secret as a non-empty string (or leave it out "
                                              "when the robot does not use signing)")
            secret = secret.strip()
        cls = DingTalkRobot if platform == "dingtalk" else FeishuRobot
        base = url_base or (DINGTALK_BASE_URL if platform == "dingtalk" else FEISHU_BASE_URL)
        if section.get("base_url") is not None:
            base = str(self.sub(section["base_url"], path + ("base_url",))).strip().rstrip("/")
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.fail(path + ("base_url",), f"expected an http(s) URL, got {base!r}")
        mention, per_service = self.mention(section.get("mention"), path + ("mention",), nested=True)
        return cls(name=name, key=token, base_url=base, secret=secret,
                   services=tuple(dict.fromkeys(self.string_list(section.get("services"), path + ("services",)))),
                   mention=mention, service_mentions=per_service)

    def robots(self, section: Mapping[str, Any], path: Path_, platform: str) -> tuple[Any, ...]:
        raw = section.get(platform)
        if isinstance(raw, Mapping):
            raw = [raw]  # a single robot may be written without the list
        if raw is not None and not isinstance(raw, list):
            self.fail(path + (platform,), "expected a list of robots (each with name and webhook)")
        if platform == "wecom":
            robots = tuple(self.robot(r, path + (platform, i), i) for i, r in enumerate(raw or []))
        else:
            robots = tuple(self.chat_robot(r, path + (platform, i), i, platform) for i, r in enumerate(raw or []))
        seen: set[str] = set()
        for i, robot in enumerate(robots):
            if robot.name in seen:
                self.fail(path + (platform, i, "name"), f"duplicate robot name '{robot.name}': names must be "
                                                        "unique (they key the outbox and the logs)")
            seen.add(robot.name)
        return robots


def parse_chat_webhook(value: str, platform: str) -> tuple[str, str | None]:
    """(token, base_url from a pasted URL or None) for a DingTalk or Feishu robot. Raises ValueError."""
    text = value.strip().strip("'\"").strip()
    product = "DingTalk (钉钉)" if platform == "dingtalk" else "Feishu (飞书)"
    example = ("https://oapi.dingtalk.com/robot/send?access_token=…" if platform == "dingtalk"
               else "https://open.feishu.cn/open-apis/bot/v2/hook/…")
    if not text:
        raise ValueError(f"the webhook is empty: set it to the {product} robot's webhook URL ({example}) or token")
    base: str | None = None
    if "://" in text or "/" in text:
        parts = urlsplit(text if "://" in text else "https://" + text)
        host = (parts.hostname or "").lower()
        if "qyapi.weixin" in host:
            raise ValueError(f"this is a WeCom (企业微信) webhook ({host}); put it under notify.wecom")
        if platform == "dingtalk":
            tokens = parse_qs(parts.query).get("access_token", [])
            if not parts.path.rstrip("/").endswith(DINGTALK_SEND_PATH) or not tokens:
                raise ValueError(f"expected a {product} robot URL like {example}, got "
                                 f"{parts.scheme}://{host}{parts.path}")
            text = tokens[0].strip()
            base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')[: -len(DINGTALK_SEND_PATH)]}"
        else:
            head, sep, token = parts.path.partition(FEISHU_HOOK_PATH)
            if not sep or not token.strip("/"):
                raise ValueError(f"expected a {product} robot URL like {example}, got "
                                 f"{parts.scheme}://{host}{parts.path}")
            text = token.strip("/")
            base = f"{parts.scheme}://{parts.netloc}{head}"
    if not _CHAT_TOKEN.fullmatch(text):
        raise ValueError(f"the webhook token {mask_key(text)} does not look like a {product} robot token; check "
                         "for a truncated copy or stray characters")
    return text, base


def parse_notify(raw: Any, *, file: str | None = None, environ: Mapping[str, str] | None = None,
                 line_of: Callable[[Path_], int | None] | None = None) -> NotifySettings:
    """Validate the raw `notify:` value (None = notifications off). ${VAR} is substituted here.

    line_of: e.g. Parsed.line, so errors can name the config line (paths start with 'notify').
    """
    reader = _Reader(file, os.environ if environ is None else environ, line_of or (lambda _p: None))
    path: Path_ = ("notify",)
    section = reader.mapping(raw, path, _NOTIFY_KEYS)
    robots = reader.robots(section, path, "wecom")
    sev = reader.mapping(section.get("severity"), path + ("severity",), _SEVERITY_KEYS)
    mention_on, remind = dict(DEFAULT_MENTION_ON), {}
    for level in SEVERITIES:
        lpath = path + ("severity", level)
        lsec = reader.mapping(sev.get(level), lpath, _LEVEL_KEYS)
        mention_on[level] = reader.choice(lsec, lpath, "mention", MENTION_RULES, mention_on[level])
        if lsec.get("remind_every") is not None:
            remind[level] = reader.number(lsec, lpath, "remind_every", 3600.0, parse_duration)
    default_severity = str(reader.sub(sev.get("default") or "P1", path + ("severity", "default"))).strip().upper()
    if default_severity not in SEVERITIES:
        reader.fail(path + ("severity", "default"),
                    f"expected one of {', '.join(SEVERITIES)}, got {default_severity!r}")
    return NotifySettings(
        default_severity=default_severity,
        mention_on=mention_on,
        remind_every=remind,
        send_on=reader.choice(section, path, "send_on", SEND_ON, "change"),
        language=reader.choice(section, path, "language", LANGUAGES, None),
        outbox_max=reader.number(section, path, "outbox_max", 50, at_least(1)),
        max_messages=reader.number(section, path, "max_messages", 4, at_least(1)),
        max_wait=reader.number(section, path, "max_wait", 90.0, parse_duration),
        timeout=reader.number(section, path, "timeout", 10.0, positive_duration),
        wecom=robots,
        dingtalk=reader.robots(section, path, "dingtalk"),
        feishu=reader.robots(section, path, "feishu"),
    )
