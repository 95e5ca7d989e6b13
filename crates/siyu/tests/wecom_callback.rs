//! WeCom's callbacks as WeCom sends them, encrypted and signed by `wechatpy` (PyPI), the
//! library merchants' WeCom integrations use: the URL check answers the decrypted
//! `echostr`; an added contact, a customer deleting the staff and a group's new member
//! become siyu's writes; a bad signature is refused and a replayed message written once.
//! Runs when `SIYU_TEST_PYTHON` names a Python with wechatpy installed (`.ci/run` makes one).

mod common;

use siyu_core::CustomerId;

const TOKEN: &str = "siyuToken2026";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "ww1234567890abcdef";

const SCRIPT: &str = r#"
import re, sys, time
import requests
from wechatpy.enterprise.crypto import WeChatCrypto

base, token, key, corp = sys.argv[1:5]
crypto = WeChatCrypto(token, key, corp)

def sealed(text, nonce, ts):
    xml = crypto.encrypt_message(text, nonce, ts)
    pick = lambda tag: re.search("<%s><!\\[CDATA\\[(.*?)\\]\\]></%s>" % (tag, tag), xml).group(1)
    return xml, pick("Encrypt"), pick("MsgSignature")

out = []
ts = str(int(time.time()))
_, echo, sig = sealed("echo-20261207", "n1", ts)
r = requests.get(base, params={"msg_signature": sig, "timestamp": ts, "nonce": "n1", "echostr": echo})
out.append("verify %d %s" % (r.status_code, r.text))

def event(body, nonce):
    xml, _, sig = sealed(body, nonce, ts)
    return requests.post(base, params={"msg_signature": sig, "timestamp": ts, "nonce": nonce}, data=xml.encode())

add = ("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
       "<CreateTime>1777599000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
       "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>"
       "<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmCallback001]]></ExternalUserID>"
       "<State><![CDATA[dy_live]]></State><WelcomeCode><![CDATA[w]]></WelcomeCode></xml>") % corp
r = event(add, "n2"); out.append("add %d %s" % (r.status_code, r.text))
r = event(add, "n3"); out.append("replay %d %s" % (r.status_code, r.text))
left = add.replace("add_external_contact", "del_follow_user").replace("1777599000", "1777685400")
r = event(left, "n4"); out.append("left %d %s" % (r.status_code, r.text))
chat = ("<xml><ToUserName><![CDATA[%s]]></ToUserName><CreateTime>1777600000</CreateTime><MsgType>event</MsgType>"
        "<Event>change_external_chat</Event><ChatId>wrChat1</ChatId><ChangeType>update</ChangeType>"
        "<UpdateDetail>add_member</UpdateDetail><JoinScene>1</JoinScene><MemChangeCnt>2</MemChangeCnt>"
        "<MemChangeList><Item>wmCallback001</Item><Item>lisi</Item></MemChangeList></xml>") % corp
r = event(chat, "n5"); out.append("chat %d %s" % (r.status_code, r.text))
xml, _, sig = sealed(add, "n6", ts)
r = requests.post(base, params={"msg_signature": "0" * 40, "timestamp": ts, "nonce": "n6"}, data=xml.encode())
out.append("forged %d %s" % (r.status_code, r.json()["code"]))
other = WeChatCrypto(token, key, "wwSomeoneElse")
xml = other.encrypt_message(add, "n7", ts)
sig = re.search("<MsgSignature><!\\[CDATA\\[(.*?)\\]\\]>", xml).group(1)
r = requests.post(base, params={"msg_signature": sig, "timestamp": ts, "nonce": "n7"}, data=xml.encode())
out.append("other corp %d %s" % (r.status_code, r.json()["code"]))
print("\n".join(out))
"#;

#[test]
fn wecom_callbacks_sealed_by_wechatpy_are_checked_and_written_once() {
    let Ok(python) = std::env::var("SIYU_TEST_PYTHON") else {
        eprintln!("SIYU_TEST_PYTHON is not set: skipped (.ci/run sets it)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wecom.db");
    for args in [
        &[
            "wecom",
            "set-callback",
            "--token",
            TOKEN,
            "--aes-key",
            AES_KEY,
            "--corp-id",
            CORP,
        ][..],
        &["channel-code", "set", "dy_live", "抖音直播"],
    ] {
        let out = common::siyu(&db, args);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
    }
    let bad = common::siyu(
        &db,
        &[
            "wecom",
            "set-callback",
            "--token",
            TOKEN,
            "--aes-key",
            "short",
            "--corp-id",
            CORP,
        ],
    );
    assert!(!bad.status.success());
    let out = common::python_against_server(&python, dir.path(), &db, SCRIPT, |addr| {
        [
            &format!("http://{addr}/v1/wecom/callback/default"),
            TOKEN,
            AES_KEY,
            CORP,
        ]
        .map(str::to_owned)
        .to_vec()
    });
    assert_eq!(
        out,
        "verify 200 echo-20261207\nadd 200 success\nreplay 200 success\nleft 200 success\n\
         chat 200 success\nforged 401 bad_signature\nother corp 401 bad_signature"
    );
    let mut store = siyu_store::open(&db.to_string_lossy()).expect("store");
    let tenant = store.tenant("default").expect("tenant");
    let customer = store
        .customer(&tenant, &CustomerId::parse("wmCallback001").expect("id"))
        .expect("added");
    assert_eq!(
        customer.channel.as_ref().map(|c| c.as_str()),
        Some("douyin_live")
    );
    let mut kinds = Vec::new();
    store
        .scan_events(&tenant, &mut |e| kinds.push(e.kind.as_str().to_owned()))
        .expect("events");
    kinds.sort();
    assert_eq!(kinds, ["group_join", "left", "wecom_add"]);
}
