/*
 * django-sse browser client. Rendered by {% sse_stream %} (template library "sse"); no
 * dependencies, no build step. Four parts, each one idea:
 *
 *   Feed        one tag's element and its declarative targets (the DOM applier);
 *   Connection  one EventSource for one or several feeds, with reconnects and backoff;
 *   PageShare   every shareable feed of this page on one connection;
 *   TabShare    one connection for every tab of the origin: the tab holding the Web Lock
 *               "django-sse" connects for the union of all tabs' feeds and relays each event
 *               over the BroadcastChannel "django-sse" (docs/topics/feeds-and-tabs.md).
 *
 * Each <script type="application/json" data-django-sse-config> holds one feed's
 * configuration; the element that contains it becomes the feed's root:
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
 * An element is the root of one feed only: a second config script in the same element is not
 * started (a console error says so), so no event is applied twice. A feed whose root leaves
 * the document (an htmx swap, a removal) stops; a tag added later (an htmx swap) starts.
 *
 * window.DjangoSSE = {scan(container), state()}: scan() starts the tags inside a container at
 * once (they are also found by a MutationObserver); state() is a snapshot for debugging.
 */
(function () {
  "use strict";

  if (window.DjangoSSE) {
    // The tag renders the script once per feed; the first copy does all the work.
    return;
  }

  var CONFIG_SELECTOR = "script[data-django-sse-config]";
  var STORAGE_PREFIX = "django-sse:last-event-id:";
  var SHARED_NAME = "django-sse";
  var DEFAULT_BACKOFF = 1000;
  var DEFAULT_MAX_BACKOFF = 30000;
  // A page may change its feeds in several steps (an htmx swap removes one tag, adds another):
  // the shared connection is rebuilt once they have settled, not once per step.
  var SETTLE_MS = 30;
  // Relayed events every tab keeps, so that the leader can replay to a tab that was away (a
  // freeze, the back/forward cache) what it missed meanwhile; past them that tab gets a reset.
  // At most this many, and this many characters of data, so that big events cost no tab much.
  var HISTORY_EVENTS = 1000;
  var HISTORY_CHARS = 1 << 20;
  var feeds = [];

  /* ---------------------------------------------------------------- small helpers */

  /**
   * Read sessionStorage, which throws in some privacy modes and sandboxed frames: resuming is
   * then only best effort, never an error.
   * @param {string} key
   * @returns {?string}
   */
  function storageGet(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  /**
   * Write (or, for an empty value, remove) a sessionStorage entry; see storageGet.
   * @param {string} key
   * @param {?string} value
   */
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

  /**
   * @param {?string} value a space-separated list
   * @returns {string[]}
   */
  function words(value) {
    return (value || "").split(/\s+/).filter(Boolean);
  }

  /**
   * Events sent with `data` are JSON; those sent with `raw_data` usually are not.
   * @param {string} raw
   * @returns {*} the parsed JSON, or the text itself
   */
  function parse(raw) {
    try {
      return JSON.parse(raw);
    } catch (e) {
      return raw;
    }
  }

  /**
   * @param {*} value
   * @returns {boolean} whether value is a plain JSON object
   */
  function isRecord(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  /**
   * @param {*} value a JSON value
   * @returns {string} the value as text for the page ("" for null)
   */
  function display(value) {
    if (value === null || value === undefined) {
      return "";
    }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  /**
   * Add every name of `more` to the object-as-set `names`.
   * @param {Object<string, boolean>} names
   * @param {string[]} more
   */
  function addNames(names, more) {
    more.forEach(function (name) {
      names[name] = true;
    });
  }

  /**
   * The feeds an event belongs to, from the `<f>:` prefix of its id (FEEDS protocol): the
   * indexes into the connection's feeds. A connection of one feed routes everything to it.
   * @param {string} id the event's id
   * @param {number} count how many feeds the connection carries
   * @returns {number[]}
   */
  function routeOf(id, count) {
    var all = [];
    for (var i = 0; i < count; i++) {
      all.push(i);
    }
    var colon = (id || "").indexOf(":");
    if (count === 1 || colon === -1) {
      return all;
    }
    return id
      .slice(0, colon)
      .split(",")
      .map(Number)
      .filter(function (n) {
        return n >= 0 && n < count && Math.floor(n) === n;
      });
  }

  /* ---------------------------------------------------------------- Feed: the DOM applier */

  /**
   * One {% sse_stream %} tag: its root element, its configuration and its declarative targets.
   * It knows nothing of connections: it is told the state and given events.
   * @constructor
   * @param {Element} root
   * @param {Object} config what the tag rendered (url, events, share, lastEventId, ...)
   */
  function Feed(root, config) {
    this.root = root;
    this.config = config;
    var url = new URL(config.url, document.baseURI);
    // Where a first visit resumes from: the id the page was rendered at.
    this.renderedId = config.lastEventId || url.searchParams.get("lastEventId") || "";
    url.searchParams.delete("lastEventId");
    this.url = url;
    // Its identity across the page and the tabs: the URL without its starting position.
    this.key = url.href;
    // Only same-origin feeds without credentials mode can share: one combined URL is sent to
    // feed 0's view, and the cross-origin case has other cookies.
    // A finite stream (reconnect=False) would end the shared connection: it keeps its own.
    this.shareable =
      config.share !== false &&
      config.reconnect !== false &&
      url.origin === window.location.origin &&
      !config.withCredentials;
  }

  /** @returns {boolean} whether the root is still in the document */
  Feed.prototype.attached = function () {
    return this.root.isConnected;
  };

  /** @param {string} state connecting, open or closed */
  Feed.prototype.setState = function (state) {
    this.root.setAttribute("data-sse-state", state);
  };

  /**
   * Dispatch a bubbling, cancelable DOM event on the root.
   * @param {string} name the DOM event's name (sse:open, sse:<event name>, ...)
   * @param {Object} detail its event.detail
   * @returns {boolean} false if a listener called preventDefault()
   */
  Feed.prototype.dispatch = function (name, detail) {
    var event = new CustomEvent(name, { bubbles: true, cancelable: true, detail: detail });
    return this.root.dispatchEvent(event);
  };

  /** @returns {string[]} the event names to listen to for this feed */
  Feed.prototype.names = function () {
    var names = { message: true, reset: true };
    addNames(names, this.config.events || []);
    // Events named by declarative targets need no listing in the tag.
    this.targets("[data-sse-swap]").forEach(function (el) {
      addNames(names, words(el.getAttribute("data-sse-swap")));
    });
    this.targets("[data-sse-list]").forEach(function (list) {
      ["created", "updated", "deleted"].forEach(function (action) {
        names[list.getAttribute("data-sse-" + action) || action] = true;
      });
    });
    return Object.keys(names);
  };

  /**
   * The elements matching selector that belong to this feed (not to a feed nested inside).
   * @param {string} selector a CSS selector
   * @returns {Element[]}
   */
  Feed.prototype.targets = function (selector) {
    var root = this.root;
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    if (root.matches(selector)) {
      found.unshift(root);
    }
    return found.filter(function (el) {
      return el.closest("[data-sse-root]") === root;
    });
  };

  /**
   * Apply one event: the sse:<name> DOM event, then (unless cancelled) the declarative targets.
   * @param {string} name the event's name
   * @param {string} raw its data
   * @param {string} id its id ("" when it has none)
   */
  Feed.prototype.apply = function (name, raw, id) {
    var detail = { event: name, data: parse(raw), raw: raw, lastEventId: id };
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

  /**
   * Swap the event into every [data-sse-swap] target that names it.
   * @param {string} name the event's name
   * @param {{data: *, raw: string}} detail the event, parsed and raw
   */
  Feed.prototype.swap = function (name, detail) {
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

  /**
   * Insert, replace or remove the keyed child of every [data-sse-list] the event concerns.
   * @param {string} name the event's name
   * @param {{data: *, raw: string}} detail the event, parsed and raw
   */
  Feed.prototype.updateLists = function (name, detail) {
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

  /**
   * @param {Element} list a [data-sse-list] element
   * @param {string} key
   * @returns {?Element} the child of list whose data-sse-key is key
   */
  Feed.prototype.findKeyed = function (list, key) {
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      if (children[i].getAttribute("data-sse-key") === key) {
        return children[i];
      }
    }
    return null;
  };

  /**
   * A list item for the event: the list's <template> filled from JSON fields (as text), or a
   * server-rendered fragment (raw_data) carrying its own data-sse-key.
   * @param {Element} list the [data-sse-list] element
   * @param {string} keyField the JSON field that keys its children
   * @param {{data: *, raw: string}} detail the event, parsed and raw
   * @returns {?Element} the new child, or null (with a console warning) if none fits
   */
  Feed.prototype.render = function (list, keyField, detail) {
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

  /* ---------------------------------------------------------------- Connection */

  /**
   * The URL of a connection for `specs` (FEEDS protocol): feed 0's URL plus one `feed=` per
   * further feed, in order, each with its own starting position (`lastEventId` in its query;
   * feed 0's is the connection's own query).
   *
   * `prev` is where the previous connection stopped: its last id and the keys of its feeds.
   * A combined id (`<f>:<cursor>`) in feed 0's query positions every group it names, so a
   * feed the previous connection had goes first and carries it; the other feeds start from
   * the id they were rendered at. A plain single-feed id goes to its own feed only. A single
   * feed given a combined id is served as a combined stream of one feed (the server reads the
   * cursor of any combined id; its events name feed "0").
   * @param {{key: string, renderedId: string}[]} specs
   * @param {{id: string, keys: string[]}} prev
   * @returns {{url: string, keys: string[]}} the URL and the feed key of each index
   */
  function connectionUrl(specs, prev) {
    var slots = specs.slice();
    var own = slots.map(function (spec) {
      return spec.renderedId;
    });
    var target = -1;
    for (var i = 0; i < slots.length && target === -1 && prev.id; i++) {
      target = prev.keys.indexOf(slots[i].key) !== -1 ? i : -1;
    }
    if (target !== -1 && prev.id.indexOf(":") !== -1) {
      slots.unshift(slots.splice(target, 1)[0]);
      own.unshift(own.splice(target, 1)[0]);
      own[0] = prev.id;
    } else if (target !== -1) {
      own[target] = prev.id;
    }
    var url = new URL(slots[0].key);
    for (var n = 1; n < slots.length; n++) {
      var feed = new URL(slots[n].key);
      if (own[n]) {
        feed.searchParams.set("lastEventId", own[n]);
      }
      url.searchParams.append("feed", feed.pathname + feed.search);
    }
    if (own[0]) {
      url.searchParams.set("lastEventId", own[0]);
    }
    var keys = slots.map(function (spec) {
      return spec.key;
    });
    return { url: url.href, keys: keys };
  }

  /**
   * One EventSource for one or several feeds, reconnecting with backoff when the browser gives
   * up. It reports events (with the indexes of the feeds they belong to) and state changes to
   * its owner, and keeps the last id so that its own reconnects resume where it stopped.
   * @constructor
   * @param {{key: string, renderedId: string, names: string[]}[]} specs the feeds, in order
   * @param {Object} options reconnect, backoff, maxBackoff, withCredentials
   * @param {{event: function(string, string, string, string[], string[]), state: function(string, Object)}} owner
   * @param {{id: string, keys: string[]}} prev where the previous connection stopped
   */
  function Connection(specs, options, owner, prev) {
    this.specs = specs;
    this.options = options;
    this.owner = owner;
    this.prev = prev;
    this.heard = false; // whether an event arrived (its id is then where to resume)
    this.lastId = "";
    this.keys = [];
    this.source = null;
    this.timer = null;
    this.attempts = 0;
    var names = {};
    specs.forEach(function (spec) {
      addNames(names, spec.names);
    });
    this.names = Object.keys(names);
  }

  /** Open the EventSource, resuming after this.lastId. */
  Connection.prototype.open = function () {
    var self = this;
    this.timer = null;
    // Our own reconnect resumes after the last event this connection had.
    var prev = this.heard ? { id: this.lastId, keys: this.keys } : this.prev;
    var planned = connectionUrl(this.specs, prev);
    var url = planned.url;
    var keys = (this.keys = planned.keys);
    var source = new EventSource(url, { withCredentials: !!this.options.withCredentials });
    this.source = source;
    this.owner.state("connecting", {});
    source.addEventListener("open", function () {
      self.attempts = 0;
      self.owner.state("open", { url: url });
    });
    source.addEventListener("error", function () {
      var retry = self.options.reconnect !== false;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error or a wrong content type): retry ourselves.
        self.source = null;
        self.owner.state("closed", { willRetry: retry });
        if (retry) {
          self.scheduleReconnect();
        }
      } else {
        // The browser reconnects by itself (sending Last-Event-ID) after `retry`.
        self.owner.state("connecting", { willRetry: retry });
        if (!retry) {
          self.close();
        }
      }
    });
    this.names.forEach(function (name) {
      source.addEventListener(name, function (event) {
        // The browser's own value: kept over events without an id, emptied by an empty one.
        self.heard = true;
        self.lastId = event.lastEventId;
        var routed = routeOf(event.lastEventId, keys.length).map(function (i) {
          return keys[i];
        });
        self.owner.event(name, event.data, event.lastEventId, routed, keys);
      });
    });
  };

  /** Reconnect after an exponential, jittered delay. */
  Connection.prototype.scheduleReconnect = function () {
    var base = this.options.backoff || DEFAULT_BACKOFF;
    var cap = this.options.maxBackoff || DEFAULT_MAX_BACKOFF;
    var delay = Math.min(cap, base * Math.pow(2, this.attempts));
    this.attempts += 1;
    // Jitter spreads the reconnects of many pages after a server restart.
    delay = delay / 2 + Math.random() * (delay / 2);
    this.timer = window.setTimeout(this.open.bind(this), delay);
  };

  /** @returns {boolean} whether it is connected or about to reconnect */
  Connection.prototype.live = function () {
    return this.source !== null || this.timer !== null;
  };

  /** Close for good (the owner may make a new one). */
  Connection.prototype.close = function () {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.owner.state("closed", {});
  };

  /* ---------------------------------------------------------------- PageShare */

  /**
   * The feeds to connect for: one spec per key, names merged, in order of first appearance.
   * @param {{key: string, renderedId: string, names: string[]}[]} list
   * @returns {{key: string, renderedId: string, names: string[]}[]}
   */
  function mergeSpecs(list) {
    var byKey = {};
    var specs = [];
    list.forEach(function (spec) {
      var merged = byKey[spec.key];
      if (!merged) {
        merged = byKey[spec.key] = { key: spec.key, renderedId: spec.renderedId, names: [] };
        specs.push(merged);
      }
      var names = {};
      addNames(names, merged.names.concat(spec.names));
      merged.names = Object.keys(names);
    });
    return specs;
  }

  /**
   * @param {{key: string, names: string[]}[]} specs
   * @returns {string} a comparable summary of specs: keys and names
   */
  function signature(specs) {
    return JSON.stringify(
      specs.map(function (spec) {
        return [spec.key, spec.names.slice().sort()];
      })
    );
  }

  /**
   * @param {Feed} feed
   * @returns {{key: string, renderedId: string, names: string[]}} the spec of one local feed
   */
  function specOf(feed) {
    return { key: feed.key, renderedId: feed.renderedId, names: feed.names() };
  }

  /**
   * @param {string[]} keys feed keys
   * @returns {string} the sessionStorage key of the last id for these feed keys
   */
  function storageKey(keys) {
    return STORAGE_PREFIX + keys.slice().sort().join(" ");
  }

  /**
   * Where a reload resumes: the last id kept in this tab for these feeds, with the keys of
   * the connection it came from (a bare id, as older versions kept, is for these feeds).
   * @param {string[]} keys
   * @returns {{id: string, keys: string[]}}
   */
  function storedPosition(keys) {
    var value = storageGet(storageKey(keys)) || "";
    try {
      var kept = JSON.parse(value);
      if (kept && typeof kept.id === "string" && Array.isArray(kept.keys)) {
        return kept;
      }
    } catch (e) {
      /* a bare id */
    }
    return { id: value, keys: keys };
  }

  /**
   * The feeds of this page that one connection carries: a single feed (share=False, a finite
   * or cross-origin stream) or every shareable feed of the page (where tabs cannot share).
   * The connection is rebuilt when the set of feeds changes and closed when none is left; the
   * last id is kept in sessionStorage per set of feeds, for a reload.
   * @constructor
   */
  function PageShare() {
    this.feeds = [];
    this.prev = { id: "", keys: [] }; // the last id and the keys of the connection it came from
    this.connection = null;
    this.timer = null;
    this.suspended = false;
    this.options = {};
  }

  /**
   * Add a feed; the first one connects at once, later ones once the page has settled.
   * @param {Feed} feed
   */
  PageShare.prototype.add = function (feed) {
    this.options = this.feeds.length ? this.options : feed.config;
    this.feeds.push(feed);
    feed.setState("connecting");
    this.changed();
  };

  /**
   * Remove a feed (its root left the page).
   * @param {Feed} feed
   */
  PageShare.prototype.remove = function (feed) {
    this.feeds = this.feeds.filter(function (f) {
      return f !== feed;
    });
    this.changed();
  };

  /** The feeds changed: refresh now if nothing is connected, else once they settle. */
  PageShare.prototype.changed = function () {
    if (!this.connection) {
      this.refresh();
    } else if (this.timer === null) {
      this.timer = window.setTimeout(this.refresh.bind(this), SETTLE_MS);
    }
  };

  /** @returns {Object[]} the specs this page connects for */
  PageShare.prototype.wanted = function () {
    return mergeSpecs(this.feeds.map(specOf));
  };

  /** @returns {string[]} the keys of this page's feeds */
  PageShare.prototype.keys = function () {
    return this.feeds.map(function (feed) {
      return feed.key;
    });
  };

  /** Connect for wanted() unless the connection already carries exactly that. */
  PageShare.prototype.refresh = function () {
    window.clearTimeout(this.timer);
    this.timer = null;
    var specs = this.suspended ? [] : this.wanted();
    var current = this.connection;
    if (current && current.live() && signature(current.specs) === signature(specs)) {
      return;
    }
    // A connection replaced by one for other feeds reports no "closed" in between.
    this.closeConnection(specs.length > 0);
    if (!specs.length) {
      return;
    }
    if (!this.prev.id) {
      this.prev = storedPosition(this.keys()); // after a reload
    }
    var self = this;
    var connection = new Connection(
      specs,
      this.options,
      {
        event: function (name, raw, id, routed, keys) {
          self.deliver(routed, name, raw, id, keys);
        },
        state: function (state, detail) {
          if (self.connection === connection) {
            self.state(state, detail); // not a replaced connection closing
          }
        },
      },
      this.prev
    );
    this.connection = connection;
    connection.open();
  };

  /**
   * Close the connection, keeping its last id for the next one.
   * @param {boolean} replacing whether a new connection follows at once
   */
  PageShare.prototype.closeConnection = function (replacing) {
    var connection = this.connection;
    if (connection) {
      this.connection = null;
      connection.close();
      if (!replacing) {
        this.state("closed", {});
      }
    }
  };

  /**
   * Apply one event to the local feeds it belongs to, and keep its id.
   * @param {string[]} routed the keys of the feeds it belongs to
   * @param {string} name the event's name
   * @param {string} raw its data
   * @param {string} id its id
   * @param {string[]} all the keys of the connection's feeds, by index
   */
  PageShare.prototype.deliver = function (routed, name, raw, id, all) {
    this.prev = { id: id, keys: all };
    storageSet(storageKey(this.keys()), id ? JSON.stringify(this.prev) : "");
    this.feeds.forEach(function (feed) {
      if (routed.indexOf(feed.key) !== -1 && feed.attached()) {
        feed.apply(name, raw, id);
      }
    });
  };

  /**
   * Show a state on the local feeds, dispatching sse:open and sse:error.
   * @param {string} state connecting, open or closed
   * @param {{willRetry: (boolean|undefined)}} detail sse:error is dispatched when willRetry is set
   */
  PageShare.prototype.state = function (state, detail) {
    this.currentState = state;
    this.feeds.forEach(function (feed) {
      var was = feed.root.getAttribute("data-sse-state");
      feed.setState(state);
      if (state === "open") {
        if (was !== "open") {
          feed.dispatch("sse:open", detail); // once per opening, however often it is told
        }
      } else if (detail.willRetry !== undefined) {
        feed.dispatch("sse:error", detail);
      }
    });
  };

  /** pagehide: close, remembering whether to come back (a finished stream stays closed). */
  PageShare.prototype.suspend = function () {
    this.comeBack = !!(this.connection && this.connection.live());
    this.suspended = true;
    this.refresh();
  };

  /** pageshow from the back/forward cache: reconnect if it was live, resuming by id. */
  PageShare.prototype.resume = function () {
    this.suspended = false;
    if (this.comeBack) {
      this.refresh();
    }
  };

  /* ---------------------------------------------------------------- TabShare */

  /**
   * One connection for every tab of the origin, on top of PageShare. Every tab announces its
   * feeds ("hello") on the BroadcastChannel and remembers the others'; the tab holding the
   * Web Lock (the leader) connects for the union and relays each event ("event": feed keys,
   * name, data, id), and the others apply the events of their own feeds and keep the last id
   * relayed. A leader that closes, is frozen or enters the back/forward cache lets the lock
   * go; the next tab in the lock's queue connects at once, resuming from that id. Every tab
   * keeps the last HISTORY_EVENTS events relayed ("history"), so that a tab back from a freeze
   * or the cache, asking with its last id ("hello" with "since"), gets what it missed from the
   * leader ("replay"), in order, before anything newer.
   * @constructor
   */
  function TabShare() {
    PageShare.call(this);
    this.tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
    this.others = {}; // tab id -> that tab's specs
    this.leading = false;
    this.channel = null;
    this.history = []; // the last relayed events, as relayed: {feeds, all, event, data, id, after}
    this.historyChars = 0;
    // Back from a freeze or the cache: the id this tab had when it left, until the leader has
    // replayed what came after it (null: nothing to catch up on).
    this.since = null;
    // Relays heard while waiting for that replay: the replay holds them too.
    this.held = [];
    this.join();
  }
  TabShare.prototype = Object.create(PageShare.prototype);

  /** @returns {boolean} whether this browser has what tab sharing needs */
  TabShare.supported = function () {
    return !!(window.BroadcastChannel && navigator.locks && window.AbortController);
  };

  /** Open the channel and queue for the lock (at start, after the cache or a freeze). */
  TabShare.prototype.join = function () {
    var self = this;
    this.channel = new BroadcastChannel(SHARED_NAME);
    this.channel.onmessage = function (message) {
      self.receive(message.data);
    };
    this.post({ type: "who" });
    this.changed();
    var abort = (this.abort = new AbortController());
    navigator.locks
      .request(SHARED_NAME, { signal: abort.signal }, function () {
        return new Promise(function (release) {
          self.releaseLock = release;
          self.leading = true;
          self.catchUpAlone();
          // Relays the old leader sent just before it went may still be queued for this
          // tab: let them set the last id first, or they would be replayed a second time.
          window.clearTimeout(self.timer);
          self.timer = window.setTimeout(self.refresh.bind(self), SETTLE_MS);
        });
      })
      .catch(function () {
        /* aborted: this tab left the queue */
      });
  };

  /** Leave: stop leading or queueing, say goodbye, close the channel. */
  TabShare.prototype.leave = function () {
    this.leading = false;
    this.refresh(); // closes the connection, if this tab led
    this.abort.abort();
    if (this.releaseLock) {
      this.releaseLock();
      this.releaseLock = null;
    }
    this.post({ type: "bye", tab: this.tab });
    this.channel.close();
    this.channel = null;
    this.others = {};
  };

  /** @param {Object} message posted to the other tabs */
  TabShare.prototype.post = function (message) {
    if (this.channel) {
      this.channel.postMessage(message);
    }
  };

  /** Announce this tab's feeds, and where it needs a replay from (if it came back). */
  TabShare.prototype.hello = function () {
    this.post({ type: "hello", tab: this.tab, feeds: this.feeds.map(specOf), since: this.since });
  };

  /** The feeds of this tab changed: tell the others (the leader reconnects if need be). */
  TabShare.prototype.changed = function () {
    this.hello();
    if (this.leading && this.timer === null) {
      this.timer = window.setTimeout(this.refresh.bind(this), SETTLE_MS);
    } else if (!this.leading && this.currentState) {
      this.state(this.currentState, {}); // a feed added while the connection is up
    }
  };

  /** @returns {Object[]} the union of every tab's feeds (this tab's first), if leading */
  TabShare.prototype.wanted = function () {
    if (!this.leading) {
      return [];
    }
    var all = this.feeds.map(specOf);
    var others = this.others;
    Object.keys(others)
      .sort()
      .forEach(function (tab) {
        all = all.concat(others[tab]);
      });
    return mergeSpecs(all);
  };

  /**
   * Handle a message of another tab: hello, bye, who, event, replay or state.
   * @param {Object} message
   */
  TabShare.prototype.receive = function (message) {
    var type = message.type;
    if (type === "hello" || type === "bye") {
      if (type === "hello") {
        this.others[message.tab] = message.feeds;
      } else {
        delete this.others[message.tab];
      }
      if (this.leading) {
        if (type === "hello" && typeof message.since === "string" && this.connection) {
          // Before anything newer is relayed: that tab takes the replay, then the relays. (Not
          // connected yet: it answers the hello that tab sends again on its "state".)
          var keys = message.feeds.map(function (spec) {
            return spec.key;
          });
          var events = this.missedSince(message.since, keys);
          this.post({ type: "replay", tab: message.tab, since: message.since, events: events });
        }
        PageShare.prototype.changed.call(this);
        var state = this.currentState || "connecting";
        this.post({ type: "state", state: state, detail: {}, lastId: this.prev.id });
      }
    } else if (type === "who") {
      this.hello();
    } else if (type === "event") {
      if (this.since !== null) {
        this.held.push(message); // the leader's replay, which comes after it, holds it too
      } else {
        this.applyRelay(message);
      }
    } else if (type === "replay") {
      if (message.tab === this.tab && message.since === this.since) {
        this.caughtUp(message.events);
      }
    } else if (type === "state") {
      if (this.since !== null) {
        this.hello(); // maybe a new leader, which did not answer the first hello
      }
      PageShare.prototype.state.call(this, message.state, message.detail);
    }
  };

  /**
   * Apply a relayed event (or a replayed one) and keep it in the history.
   * @param {{feeds: string[], all: string[], event: string, data: string, id: string}} message
   */
  TabShare.prototype.applyRelay = function (message) {
    this.history.push(message);
    this.historyChars += message.data.length;
    while (this.history.length > HISTORY_EVENTS || this.historyChars > HISTORY_CHARS) {
      this.historyChars -= this.history.shift().data.length;
    }
    var args = [message.feeds, message.event, message.data, message.id, message.all];
    PageShare.prototype.deliver.apply(this, args);
  };

  /**
   * The relayed events after the one with id `since`, or null when they may not be all the
   * asking tab missed: the history does not reach back to it (away too long, or no id yet), or
   * a connection since then did not carry all of that tab's feeds (dropped while it was away:
   * no tab needed them).
   * @param {string} since the asking tab's last id
   * @param {string[]} keys the asking tab's feeds
   * @returns {?Object[]}
   */
  TabShare.prototype.missedSince = function (since, keys) {
    function carried(message) {
      return keys.every(function (key) {
        return message.all.indexOf(key) !== -1;
      });
    }
    if (!carried({ all: this.connection.keys })) {
      return null;
    }
    if (since === this.prev.id) {
      return [];
    }
    for (var i = this.history.length - 1; since && i >= 0; i--) {
      if (this.history[i].id === since) {
        var missed = this.history.slice(i);
        return missed.every(carried) ? missed.slice(1) : null;
      }
    }
    return null;
  };

  /** Tell this tab's feeds they missed events no one can replay: a reset (reason "missed"). */
  TabShare.prototype.missed = function () {
    this.history = []; // it has a gap now: no replay may reach back across it
    this.historyChars = 0;
    this.feeds.forEach(function (feed) {
      feed.apply("reset", '{"reason": "missed"}', "");
    });
  };

  /**
   * The leader's replay arrived: apply it (the relays held meanwhile are in it).
   * @param {?Object[]} events what this tab missed, or null: more than the history holds
   */
  TabShare.prototype.caughtUp = function (events) {
    this.since = null;
    this.held = [];
    if (events === null) {
      this.missed(); // declarative pages reload, as past the server's replay window
      return;
    }
    events.forEach(this.applyRelay, this);
  };

  /**
   * This tab leads before any leader replayed to it: it resumes the connection from its own
   * id (the server replays), unless it heard relays since it came back. Then the other tabs
   * have those: it resumes after them, as they would, and what it missed before them is a
   * reset, unless the first of them comes right after its own id.
   */
  TabShare.prototype.catchUpAlone = function () {
    var held = this.held;
    if (this.since !== null && held.length) {
      if (held[0].after !== this.since) {
        this.missed();
      }
      held.forEach(this.applyRelay, this);
    }
    this.since = null;
    this.held = [];
  };

  /**
   * As PageShare's, and relayed to the other tabs.
   * @param {string[]} routed
   * @param {string} name
   * @param {string} raw
   * @param {string} id
   * @param {string[]} all
   */
  TabShare.prototype.deliver = function (routed, name, raw, id, all) {
    var message = { type: "event", feeds: routed, all: all, event: name, data: raw, id: id };
    message.after = this.prev.id;
    this.applyRelay(message);
    this.post(message);
  };

  /**
   * As PageShare's, and relayed to the other tabs.
   * @param {string} state
   * @param {Object} detail
   */
  TabShare.prototype.state = function (state, detail) {
    PageShare.prototype.state.call(this, state, detail);
    if (this.leading) {
      this.post({ type: "state", state: state, detail: detail, lastId: this.prev.id });
    }
  };

  /** pagehide and freeze: leave, so that another tab takes over at once. */
  TabShare.prototype.suspend = function () {
    if (this.channel) {
      this.leave();
    }
  };

  /** pageshow from the cache, resume after a freeze: join again, resuming by id. */
  TabShare.prototype.resume = function () {
    if (!this.channel) {
      this.since = this.prev.id;
      this.join();
    }
  };

  /* ---------------------------------------------------------------- starting feeds */

  var pageShare = null;
  var tabShare = null;
  var singles = []; // a PageShare per feed that does not share

  /**
   * The owner of a shareable feed: the tabs' shared connection where the browser has Web
   * Locks and BroadcastChannel, else the page's.
   */
  function sharedOwner() {
    if (TabShare.supported()) {
      tabShare = tabShare || new TabShare();
      return tabShare;
    }
    pageShare = pageShare || new PageShare();
    return pageShare;
  }

  /**
   * Start a feed for config in root, unless root is the root of a feed already.
   * @param {Object} config the tag's configuration
   * @param {Element} root the element that holds the tag
   * @returns {?Feed}
   */
  function start(config, root) {
    for (var i = 0; i < feeds.length; i++) {
      if (feeds[i].root === root) {
        // Two feeds on one root would apply every swap and list update twice and fight
        // over data-sse-state: the first one keeps the element.
        console.error(
          "django-sse: this element is already the root of the stream " +
            feeds[i].url.href +
            "; the stream " +
            config.url +
            " is not started. Wrap each {% sse_stream %} tag in an element of its own.",
          root
        );
        return null;
      }
    }
    root.setAttribute("data-sse-root", "");
    var feed = new Feed(root, config);
    feeds.push(feed);
    if (feed.shareable) {
      feed.owner = sharedOwner();
    } else {
      feed.owner = new PageShare();
      singles.push(feed.owner);
    }
    feed.owner.add(feed);
    return feed;
  }

  /** Stop the feeds whose root left the document. */
  function sweep() {
    feeds = feeds.filter(function (feed) {
      if (feed.attached()) {
        return true;
      }
      feed.owner.remove(feed);
      return false;
    });
  }

  /**
   * Start the tags inside container (default: the document) not started yet.
   * @param {ParentNode} [container]
   */
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

  /** Every owner of a connection in this page. */
  function owners() {
    return singles.concat(pageShare ? [pageShare] : [], tabShare ? [tabShare] : []);
  }

  /** @returns {Object} what this page runs, for debugging and tests */
  function state() {
    return {
      feeds: feeds.map(function (feed) {
        return feed.key;
      }),
      tabs: !!tabShare,
      leading: !!(tabShare && tabShare.leading),
      connections: owners()
        .filter(function (owner) {
          return owner.connection && owner.connection.source;
        })
        .map(function (owner) {
          return owner.connection.source.url;
        }),
      lastId: (tabShare || pageShare || { prev: { id: "" } }).prev.id,
    };
  }

  // A page leaving closes its connections cleanly (and hands the tabs' connection over); one
  // restored from the back/forward cache connects again, resuming from the kept id. A frozen
  // tab (Page Lifecycle) cannot relay: it hands over too, and rejoins when resumed.
  window.addEventListener("pagehide", function () {
    owners().forEach(function (owner) {
      owner.suspend();
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      owners().forEach(function (owner) {
        owner.resume();
      });
    }
  });
  document.addEventListener("freeze", function () {
    if (tabShare) {
      tabShare.suspend();
    }
  });
  document.addEventListener("resume", function () {
    if (tabShare) {
      tabShare.resume();
    }
  });

  /**
   * The client's public surface (docs/topics/feeds-and-tabs.md, "From JavaScript"); nothing else is.
   * @namespace DjangoSSE
   * @property {function(ParentNode=)} scan start the tags inside a container now, rather than
   *     at the MutationObserver's next batch (e.g. right after inserting markup by hand)
   * @property {function(): Object} state what this page runs: feeds, tabs, leading,
   *     connections, lastId (for debugging and tests; its shape may change)
   */
  window.DjangoSSE = Object.freeze({ scan: scan, state: state });

  var pending = false;
  // Tags that arrive (an htmx swap) start, feeds whose root left stop: checked once per batch
  // of mutations.
  new MutationObserver(function () {
    if (pending) {
      return;
    }
    pending = true;
    window.queueMicrotask(function () {
      pending = false;
      sweep();
      scan(document);
    });
  }).observe(document.documentElement, { childList: true, subtree: true });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      scan(document);
    });
  } else {
    scan(document);
  }
})();
