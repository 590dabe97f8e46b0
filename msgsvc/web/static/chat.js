// The msgsvc chat page: one WebSocket to /ws; each message out is one command line, each
// message in is one whole reply or event, exactly as TCP would send it. Everything shown is
// set with textContent, never parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const decoder = new TextDecoder();
  const waiting = new Map(); // tag -> function(reply)
  const people = new Set();
  let sent = 0;
  let myName = null;

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws");
  socket.binaryType = "arraybuffer";

  function setState(text) {
    $("state").textContent = text;
  }

  function show(kind, who, text) {
    const item = document.createElement("li");
    item.className = kind;
    if (who !== null) {
      const name = document.createElement("span");
      name.className = "who";
      name.textContent = who;
      item.appendChild(name);
    }
    item.appendChild(document.createTextNode(text));
    const log = $("log");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function showPeople() {
    const list = $("people");
    list.replaceChildren();
    for (const name of [...people].sort()) {
      const item = document.createElement("li");
      item.textContent = name === myName ? name + " (you)" : name;
      list.appendChild(item);
    }
  }

  // A reply: [#tag ]OK text | [#tag ]ERR code text | [#tag ]DATA n[ label] CRLF payload CRLF
  function parseReply(text) {
    let tag = null;
    if (text.startsWith("#")) {
      const space = text.indexOf(" ");
      tag = text.slice(1, space);
      text = text.slice(space + 1);
    }
    const end = text.indexOf("\r\n");
    const line = end < 0 ? text : text.slice(0, end);
    if (line.startsWith("DATA ")) {
      return { tag, ok: true, text: "", payload: text.slice(end + 2, text.length - 2) };
    }
    if (line.startsWith("ERR ")) {
      const rest = line.slice(4);
      const space = rest.indexOf(" ");
      return { tag, ok: false, code: rest.slice(0, space), text: rest.slice(space + 1) };
    }
    return { tag, ok: true, text: line.slice(3) };
  }

  function command(line, then) {
    const tag = "w" + ++sent;
    waiting.set(tag, then);
    socket.send("#" + tag + " " + line);
  }

  function failed(reply) {
    show("error", null, "ERR " + reply.code + ": " + reply.text);
  }

  function onEvent(line) {
    const body = line.slice(2);
    const space = body.indexOf(" ");
    const kind = space < 0 ? body : body.slice(0, space);
    const rest = space < 0 ? "" : body.slice(space + 1);
    if (kind === "CHAT") {
      const split = rest.indexOf(" ");
      show("chat", rest.slice(0, split), rest.slice(split + 1));
    } else if (kind === "JOIN") {
      people.add(rest);
      showPeople();
      show("notice", null, rest + " joined");
    } else if (kind === "LEAVE") {
      people.delete(rest);
      showPeople();
      show("notice", null, rest + " left");
    } else if (kind === "TWEET") {
      const [id, author] = rest.split(" ", 2);
      const text = rest.slice(id.length + author.length + 2);
      show("tweet", author, "posted #" + id + ": " + text);
    } else if (kind === "BYE") {
      show("notice", null, "The server closed the connection: " + rest);
    }
  }

  socket.addEventListener("message", (message) => {
    const text = decoder.decode(message.data);
    if (text.startsWith("* ")) {
      onEvent(text.slice(0, text.length - 2));
      return;
    }
    const reply = parseReply(text);
    const then = reply.tag === null ? undefined : waiting.get(reply.tag);
    if (then !== undefined) {
      waiting.delete(reply.tag);
      then(reply);
    } else if (!reply.ok) {
      failed(reply); // e.g. ERR full on connecting
    } else if (reply.text.startsWith("msgsvc ")) {
      setState("Connected. Pick a name to chat.");
    }
  });

  socket.addEventListener("close", () => {
    setState("Disconnected. Reload the page to connect again.");
    for (const id of ["join", "send", "post", "follow"]) {
      $(id).disabled = true;
    }
  });

  $("name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    command("NAME " + name, (reply) => {
      if (!reply.ok) {
        failed(reply);
        return;
      }
      myName = name;
      setState("Connected as " + name + ".");
      $("name-form").classList.add("hidden");
      $("say").disabled = $("send").disabled = false;
      $("say").focus();
      command("WHO", (who) => {
        for (const entry of who.payload.split("\r\n")) {
          const first = entry.split(" ")[0];
          if (first) people.add(first.replace(/^~/, ""));
        }
        people.add(name);
        showPeople();
      });
    });
  });

  $("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("say").value;
    if (!text.trim()) return;
    command("SAY " + text, (reply) => {
      if (reply.ok) {
        show("chat me", myName, text);
        $("say").value = "";
      } else {
        failed(reply);
      }
    });
  });

  $("tweet-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("tweet").value;
    command("TWEET " + text, (reply) => {
      if (reply.ok) {
        show("notice", null, "You posted: " + text);
        $("tweet").value = "";
      } else {
        failed(reply);
      }
    });
  });

  $("follow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let tag = $("tag").value.trim();
    if (!tag.startsWith("#")) tag = "#" + tag;
    command("FOLLOW " + tag, (reply) => {
      if (reply.ok) {
        $("following").textContent = "You are " + reply.text + ".";
        $("tag").value = "";
      } else {
        failed(reply);
      }
    });
  });
})();
