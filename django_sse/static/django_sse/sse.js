/*
 * django-sse browser client. Rendered by {% sse_stream %} (template library "sse"); no
 * dependencies, no build step.
 *
 * Each <script type="application/json" data-django-sse-config> holds one stream's
 * configuration; the element that contains it becomes the stream's root:
 *   - data-sse-state="connecting|open|closed" reflects the connection;
 *   - DOM events "sse:open", "sse:error" and "sse:<event name>" are dispatched on it (they
 *     bubble; event.detail = {event, data, raw, lastEventId});
 *   - declarative targets inside it are updated without custom JavaScript:
 *       [data-sse-swap="name ..."]  gets the event's raw data swapped in
 *                                   (data-sse-swap-mode: innerHTML, beforeend, afterbegin,
 *                                   text, append-text);
 *       [data-sse-list]             children keyed by data-sse-key are inserted, replaced or
 *                                   removed on "created", "updated", "deleted" (rename them
 *                                   with data-sse-created/-updated/-deleted).
 * An element is the root of one stream only: a second config script in the same element is
 * not started (a console error says so), so no event is applied twice.
 */
(function () {
  "use strict";

  if (window.DjangoSSE) {
    // The tag renders the script once per stream; the first copy does all the work.
    return;
  }

  var CONFIG_SELECTOR = "script[data-django-sse-config]";
  var STORAGE_PREFIX = "django-sse:last-event-id:";
  var DEFAULT_BACKOFF = 1000;
  var DEFAULT_MAX_BACKOFF = 30000;
  var streams = [];

  // sessionStorage throws in some privacy modes and sandboxed frames: resuming is then only
  // best effort, never an error.
  function storageGet(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      if (value) {
        window.sessionStorage.setItem(key, value);
      } else {
        window.sessionStorage.removeItem(key);
      }
    } catch (e) {
      /* see storageGet */
    }
  }

  function words(value) {
    return (value || "").split(/\s+/).filter(Boolean);
  }

  function parse(raw) {
    // Events sent with `data` are JSON; those sent with `raw_data` usually are not.
    try {
      return JSON.parse(raw);
    } catch (e) {
      return raw;
    }
  }

  function isRecord(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function display(value) {
    if (value === null || value === undefined) {
      return "";
    }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function Stream(root, config) {
    this.root = root;
    this.config = config;
    this.source = null;
    this.timer = null;
    this.attempts = 0;
    // Set by pagehide when the stream was connected or about to reconnect: only those
    // streams come back on pageshow, never one that had closed for good.
    this.suspended = false;
    var url = new URL(config.url, document.baseURI);
    url.searchParams.delete("lastEventId");
    this.url = url;
    this.storageKey = STORAGE_PREFIX + url.href;
  }

  Stream.prototype.setState = function (state) {
    this.root.setAttribute("data-sse-state", state);
  };

  Stream.prototype.dispatch = function (name, detail) {
    var event = new CustomEvent(name, { bubbles: true, cancelable: true, detail: detail });
    return this.root.dispatchEvent(event);
  };

  Stream.prototype.eventNames = function () {
    var names = { message: true, reset: true };
    (this.config.events || []).forEach(function (name) {
      names[name] = true;
    });
    // Events named by declarative targets need no listing in the tag.
    this.targets("[data-sse-swap]").forEach(function (el) {
      words(el.getAttribute("data-sse-swap")).forEach(function (name) {
        names[name] = true;
      });
    });
    this.targets("[data-sse-list]").forEach(function (list) {
      ["created", "updated", "deleted"].forEach(function (action) {
        names[list.getAttribute("data-sse-" + action) || action] = true;
      });
    });
    return Object.keys(names);
  };

  Stream.prototype.targets = function (selector) {
    var root = this.root;
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    if (root.matches(selector)) {
      found.unshift(root);
    }
    // A stream nested inside this one owns its own targets.
    return found.filter(function (el) {
      var owner = el.closest("[data-sse-root]");
      return owner === root;
    });
  };

  Stream.prototype.connect = function () {
    var self = this;
    this.timer = null;
    var url = new URL(this.url.href);
    // A reload starts a new EventSource that knows no id: resume from the one kept for this
    // tab, or from the id the page was rendered at.
    var resumeFrom = storageGet(this.storageKey) || this.config.lastEventId;
    if (resumeFrom) {
      url.searchParams.set("lastEventId", resumeFrom);
    }
    var source = new EventSource(url.href, { withCredentials: !!this.config.withCredentials });
    this.source = source;
    this.setState("connecting");
    source.addEventListener("open", function () {
      self.attempts = 0;
      self.setState("open");
      self.dispatch("sse:open", { url: url.href });
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error or a wrong content type): retry ourselves.
        self.setState("closed");
        self.dispatch("sse:error", { willRetry: self.config.reconnect !== false });
        self.source = null;
        if (self.config.reconnect !== false) {
          self.scheduleReconnect();
        }
      } else {
        // The browser reconnects by itself, after the server's `retry` delay.
        self.setState("connecting");
        self.dispatch("sse:error", { willRetry: true });
        if (self.config.reconnect === false) {
          self.close();
        }
      }
    });
    this.eventNames().forEach(function (name) {
      source.addEventListener(name, function (event) {
        self.receive(name, event);
      });
    });
  };

  Stream.prototype.scheduleReconnect = function () {
    var base = this.config.backoff || DEFAULT_BACKOFF;
    var cap = this.config.maxBackoff || DEFAULT_MAX_BACKOFF;
    var delay = Math.min(cap, base * Math.pow(2, this.attempts));
    this.attempts += 1;
    // Jitter spreads the reconnects of many pages after a server restart.
    delay = delay / 2 + Math.random() * (delay / 2);
    this.timer = window.setTimeout(this.connect.bind(this), delay);
  };

  Stream.prototype.close = function () {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.setState("closed");
  };

  Stream.prototype.suspend = function () {
    this.suspended = this.suspended || this.source !== null || this.timer !== null;
    this.close();
  };

  Stream.prototype.resume = function () {
    if (this.suspended && !this.source && this.timer === null) {
      this.suspended = false;
      this.attempts = 0;
      this.connect();
    }
  };

  Stream.prototype.receive = function (name, event) {
    if (event.lastEventId) {
      storageSet(this.storageKey, event.lastEventId);
    } else if (name === "reset") {
      storageSet(this.storageKey, null);
    }
    var detail = {
      event: name,
      data: parse(event.data),
      raw: event.data,
      lastEventId: event.lastEventId,
    };
    if (!this.dispatch("sse:" + name, detail)) {
      return; // the page handled it and asked for no declarative update
    }
    if (name === "reset") {
      // Past the server's replay window: what the page shows may be stale. Declarative
      // targets cannot refetch by themselves, so the page is loaded again.
      if (this.targets("[data-sse-swap], [data-sse-list]").length) {
        window.location.reload();
      }
      return;
    }
    this.swap(name, detail);
    this.updateLists(name, detail);
  };

  Stream.prototype.swap = function (name, detail) {
    this.targets("[data-sse-swap]").forEach(function (el) {
      if (words(el.getAttribute("data-sse-swap")).indexOf(name) === -1) {
        return;
      }
      var mode = el.getAttribute("data-sse-swap-mode") || "innerHTML";
      // Markup only from raw_data fragments (text that is not JSON). JSON data is data: a
      // model's field holding "<img onerror=...>" must never become markup.
      if (detail.data !== detail.raw) {
        mode = mode === "beforeend" || mode === "append-text" ? "append-text" : "text";
      }
      // A JSON string shows as its value; other JSON as the JSON text.
      var text = typeof detail.data === "string" ? detail.data : detail.raw;
      if (mode === "text") {
        el.textContent = text;
      } else if (mode === "append-text") {
        el.appendChild(document.createTextNode(text + "\n"));
      } else if (mode === "beforeend" || mode === "afterbegin") {
        el.insertAdjacentHTML(mode, detail.raw);
      } else {
        el.innerHTML = detail.raw;
      }
    });
  };

  Stream.prototype.updateLists = function (name, detail) {
    var self = this;
    this.targets("[data-sse-list]").forEach(function (list) {
      var keyField = list.getAttribute("data-sse-key-field") || "id";
      if (name === (list.getAttribute("data-sse-deleted") || "deleted")) {
        var key = isRecord(detail.data) ? detail.data[keyField] : detail.data;
        var gone = self.findKeyed(list, display(key));
        if (gone) {
          gone.remove();
        }
        return;
      }
      var created = list.getAttribute("data-sse-created") || "created";
      var updated = list.getAttribute("data-sse-updated") || "updated";
      if (name !== created && name !== updated) {
        return;
      }
      var node = self.render(list, keyField, detail);
      if (!node) {
        return;
      }
      // Created and updated both upsert: a replayed or repeated event must not duplicate.
      var existing = self.findKeyed(list, node.getAttribute("data-sse-key"));
      if (existing) {
        existing.replaceWith(node);
      } else if (list.getAttribute("data-sse-insert") === "start") {
        list.insertBefore(node, list.firstElementChild);
      } else {
        list.appendChild(node);
      }
    });
  };

  Stream.prototype.findKeyed = function (list, key) {
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      if (children[i].getAttribute("data-sse-key") === key) {
        return children[i];
      }
    }
    return null;
  };

  Stream.prototype.render = function (list, keyField, detail) {
    var node;
    if (isRecord(detail.data)) {
      var template = list.querySelector(":scope > template");
      if (!template || !template.content.firstElementChild) {
        console.warn("django-sse: a [data-sse-list] needs a <template> to render JSON", list);
        return null;
      }
      node = template.content.firstElementChild.cloneNode(true);
      var fields = Array.prototype.slice.call(node.querySelectorAll("[data-sse-field]"));
      if (node.hasAttribute("data-sse-field")) {
        fields.unshift(node);
      }
      fields.forEach(function (el) {
        // textContent, never innerHTML: field values are data, not markup.
        el.textContent = display(detail.data[el.getAttribute("data-sse-field")]);
      });
      node.setAttribute("data-sse-key", display(detail.data[keyField]));
    } else if (detail.data !== detail.raw) {
      console.warn("django-sse: list events need an object or an HTML fragment", detail.raw);
      return null;
    } else {
      // A server-rendered fragment (raw_data) that carries its own data-sse-key.
      var holder = document.createElement("template");
      holder.innerHTML = String(detail.raw).trim();
      node = holder.content.firstElementChild;
      if (!node || !node.hasAttribute("data-sse-key")) {
        console.warn("django-sse: a list fragment needs a data-sse-key attribute", detail.raw);
        return null;
      }
    }
    return node;
  };

  function start(config, root) {
    for (var i = 0; i < streams.length; i++) {
      if (streams[i].root === root) {
        // Two streams on one root would apply every swap and list update twice and fight
        // over data-sse-state: the first one keeps the element.
        console.error(
          "django-sse: this element is already the root of the stream " +
            streams[i].url.href +
            "; the stream " +
            config.url +
            " is not started. Wrap each {% sse_stream %} tag in an element of its own.",
          root
        );
        return null;
      }
    }
    root.setAttribute("data-sse-root", "");
    var stream = new Stream(root, config);
    streams.push(stream);
    stream.connect();
    return stream;
  }

  function scan(container) {
    var scripts = (container || document).querySelectorAll(CONFIG_SELECTOR);
    Array.prototype.forEach.call(scripts, function (script) {
      if (script.hasAttribute("data-django-sse-started")) {
        return;
      }
      script.setAttribute("data-django-sse-started", "");
      var config;
      try {
        config = JSON.parse(script.textContent);
      } catch (e) {
        console.error("django-sse: unreadable stream configuration", script);
        return;
      }
      start(config, script.parentElement || document.body);
    });
  }

  // A page leaving closes its streams cleanly; one restored from the back/forward cache
  // connects again the streams that were live when it left (a stream closed for good, e.g.
  // with reconnect=false, stays closed) and they resume from the kept id.
  window.addEventListener("pagehide", function () {
    streams.forEach(function (stream) {
      stream.suspend();
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      streams.forEach(function (stream) {
        stream.resume();
      });
    }
  });

  window.DjangoSSE = { scan: scan, start: start, streams: streams };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      scan(document);
    });
  } else {
    scan(document);
  }
})();
