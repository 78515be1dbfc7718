/*
 * sarye 운영 콘솔 (operations console). Plain JavaScript, no library, no
 * build step. It is a client of the HTTP API like any other: the bearer
 * token is entered once and kept in sessionStorage (gone when the tab
 * closes); every call carries it in the Authorization header and asks for
 * Korean messages (Accept-Language: ko). Pages are built with DOM calls
 * only (the server's Content-Security-Policy forbids inline code and
 * string-to-HTML sinks). Optional endpoints (the shadow replay of a plugin
 * set, views by assignee) are found in /openapi.json and shown when the
 * server has them.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'sarye.token';
  const main = document.getElementById('main');
  const state = { token: sessionStorage.getItem(TOKEN_KEY), spec: null, role: null, page: null, today: null };

  // ---- DOM helpers ----
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.setAttribute('class', v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function table(headers, rows, attrs) {
    return h('table', attrs,
      h('thead', null, h('tr', null, headers.map((t) => h('th', typeof t === 'object' ? t : { text: t })))),
      h('tbody', null, rows));
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    // Korea has no DST: UTC+9.
    return new Date(d.getTime() + 9 * 3600e3).toISOString().replace('T', ' ').slice(0, 19);
  }

  function kstToday() {
    return new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10);
  }

  function dayNumber(date) {
    return Math.round(Date.parse(date + 'T00:00:00Z') / 86400e3);
  }

  function dateOf(day) {
    return new Date(day * 86400e3).toISOString().slice(0, 10);
  }

  // ---- the API ----
  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json', 'Accept-Language': 'ko' };
    if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json; charset=utf-8';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { status: 0, ok: false, json: { error: { code: 'network', message: '서버에 연결할 수 없습니다', details: {} } } };
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    return { status: res.status, ok: res.ok, json, text, headers: res.headers };
  }

  // Every page of a list (bounded).
  async function listAll(path, query, maxPages) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < (maxPages || 20); page++) {
      const q = new URLSearchParams(Object.assign({}, query || {}, { limit: '500' }));
      if (cursor) q.set('cursor', cursor);
      const r = await api('GET', path + '?' + q.toString());
      if (!r.ok) return { error: r };
      items.push(...(r.json.items || []));
      cursor = r.json.next_cursor;
      if (!cursor) return { items, complete: true };
    }
    return { items, complete: false };
  }

  function hasPath(method, path) {
    const p = state.spec && state.spec.paths && state.spec.paths[path];
    return !!(p && p[method.toLowerCase()]);
  }

  // An error answer as the server wrote it: the (Korean) message, the
  // stable code, and the details people need (plugin errors with file:line).
  function errorBox(r, title) {
    const err = (r.json && r.json.error) || { code: 'http_' + r.status, message: '요청이 실패했습니다 (HTTP ' + r.status + ')', details: {} };
    const box = h('div', { class: 'error', role: 'alert', 'data-code': err.code },
      title ? h('strong', { text: title + ' ' }) : null,
      h('span', { class: 'message', text: err.message }), ' ',
      h('span', { class: 'code', text: '(' + err.code + ')' }));
    const errors = err.details && err.details.errors;
    if (Array.isArray(errors) && errors.length) box.append(pluginErrors(errors));
    if (r.status === 401) {
      box.append(h('div', null, '토큰을 다시 입력하세요. ',
        h('button', { type: 'button', class: 'small quiet', onclick: logout, text: '다시 로그인' })));
    }
    return box;
  }

  function where(e) {
    return (e.file || '?') + (Number.isInteger(e.line) ? ':' + e.line : '');
  }

  function pluginErrors(errors) {
    return h('ul', { class: 'plugin-errors' }, errors.map((e) =>
      h('li', { class: 'plugin-error' },
        h('code', { class: 'where', text: where(e) }), ': ',
        e.plugin ? h('span', { class: 'badge', text: e.plugin }) : null, ' ',
        h('span', { text: e.message || '' }))));
  }

  // ---- login ----
  function showLogin(message) {
    document.getElementById('nav').hidden = true;
    document.getElementById('who').hidden = true;
    clear(main);
    const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'sy_...', required: true });
    const status = h('div', { id: 'login-status' });
    if (message) status.append(message);
    const form = h('form', { id: 'login-form', class: 'card login' },
      h('h2', { text: '로그인' }),
      h('p', { class: 'muted', text: '관리자 또는 감사자 토큰을 입력하세요. 토큰은 이 탭을 닫으면 지워집니다.' }),
      h('label', null, '토큰', input),
      h('p', null, h('button', { type: 'submit', id: 'login-button', text: '들어가기' })),
      status);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(status);
      state.token = input.value.trim();
      const r = await api('GET', '/v1/programs');
      if (!r.ok) {
        state.token = null;
        status.append(errorBox(r, '로그인할 수 없습니다.'));
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, state.token);
      await start();
    });
    main.append(form);
    input.focus();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.role = null;
    showLogin();
  }

  const ROLE_NAMES = { operator: '시스템 운영자', admin: '관리자', auditor: '감사자', staff: '실무자', worker: '실무자', supervisor: '슈퍼바이저', agency: '연계 기관' };

  async function start() {
    if (!state.token) return showLogin();
    const check = await api('GET', '/v1/programs');
    if (check.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      return showLogin(errorBox(check, '저장된 토큰이 더는 유효하지 않습니다.'));
    }
    // The role, from what the token may read: plugins are a system
    // operator's, the trail an auditor's, tokens an administrator's.
    const [spec, clock, audit, plugins, tokens] = await Promise.all([
      api('GET', '/openapi.json'), api('GET', '/v1/admin/clock'), api('GET', '/v1/audit?limit=1'),
      api('GET', '/v1/admin/plugins'), api('GET', '/v1/tokens?limit=1')]);
    state.spec = spec.ok ? spec.json : null;
    state.role = plugins.ok ? 'operator' : audit.ok ? 'auditor' : tokens.ok ? 'admin' : 'staff';
    state.today = clock.ok ? clock.json.today : null;
    document.getElementById('nav').hidden = false;
    document.getElementById('who').hidden = false;
    document.getElementById('who-role').textContent = ROLE_NAMES[state.role];
    route();
  }

  // ---- routing ----
  const PAGES = { plugins: pagePlugins, deadlines: pageDeadlines, agencies: pageAgencies, audit: pageAudit };

  function route() {
    if (!state.token || !state.role) return;
    const m = /^#\/([a-z]+)/.exec(location.hash);
    const fallback = state.role === 'auditor' ? 'audit' : state.role === 'operator' ? 'plugins' : 'deadlines';
    const name = m && PAGES[m[1]] ? m[1] : fallback;
    state.page = name;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
    clear(main);
    const root = h('section', { id: 'page-' + name });
    main.append(root);
    PAGES[name](root).catch((e) => root.append(h('div', { class: 'error', text: '화면을 그리지 못했습니다: ' + e })));
  }

  function pageHeader(root, title, onRefresh) {
    root.append(h('div', { class: 'row' }, h('h2', { text: title }),
      onRefresh ? h('button', { type: 'button', class: 'small quiet', id: 'refresh-button', onclick: onRefresh, text: '새로 고침' }) : null));
  }

  // ---- plugins ----
  const KIND_NAMES = { program: '사업', region: '지역', agency: '연계 기관' };

  async function pagePlugins(root) {
    pageHeader(root, '플러그인 묶음', () => route());
    const body = h('div', { 'aria-busy': 'true' });
    const actions = h('div', { class: 'card' });
    const result = h('div', { id: 'plugin-action-result' });
    root.append(actions, result, body);

    const reloadBtn = h('button', { type: 'button', id: 'reload-button', text: '다시 읽기 (적용)' });
    const candBtn = h('button', { type: 'button', id: 'candidate-button', class: 'quiet', text: '후보와 비교' });
    actions.append(h('div', { class: 'row' }, reloadBtn, candBtn,
      h('span', { class: 'muted', text: '디스크의 플러그인 묶음을 검사합니다. 오류가 하나라도 있으면 적용하지 않고 지금 규칙을 계속 씁니다.' })));
    if (hasPath('POST', '/v1/admin/plugins/replay')) {
      const replayBtn = h('button', { type: 'button', id: 'replay-button', class: 'quiet', text: '섀도 재실행' });
      replayBtn.addEventListener('click', async () => {
        replayBtn.disabled = true;
        clear(result);
        result.append(h('p', { class: 'muted', text: '후보 묶음으로 지난 결정을 다시 실행하는 중…' }));
        // The candidate is the set on disk: its files that differ from the
        // live set are sent (the server never reads a directory for a request).
        const cand = await api('GET', '/v1/admin/plugins/candidate');
        if (!cand.ok) {
          clear(result);
          replayBtn.disabled = false;
          return result.append(errorBox(cand, '후보 묶음을 읽지 못했습니다:'));
        }
        const files = (cand.json.files || []).filter((f) => f.status !== 'same')
          .map((f) => ({ path: f.path, text: f.status === 'removed' ? null : f.candidate_text }));
        if (!files.length) {
          clear(result);
          replayBtn.disabled = false;
          return result.append(h('p', { id: 'replay-same', class: 'muted', text: '디스크의 묶음이 운영 중인 묶음과 같아 다시 실행할 것이 없습니다.' }));
        }
        const r = await api('POST', '/v1/admin/plugins/replay', { files });
        clear(result);
        replayBtn.disabled = false;
        if (!r.ok) return result.append(errorBox(r, '섀도 재실행 실패:'));
        result.append(h('div', { class: 'card', id: 'replay-report' }, h('h3', { text: '섀도 재실행 보고서' }), renderJson(r.json)));
      });
      actions.firstChild.insertBefore(replayBtn, actions.firstChild.children[2]);
    }

    reloadBtn.addEventListener('click', async () => {
      reloadBtn.disabled = true;
      clear(result);
      const r = await api('POST', '/v1/admin/plugins/reload');
      reloadBtn.disabled = false;
      if (!r.ok) {
        result.append(errorBox(r, '다시 읽기 실패:'));
      } else {
        result.append(h('div', { class: 'ok', id: 'reload-ok' }, r.json.changed
          ? '새 세대 ' + r.json.generation + '을(를) 적용했습니다.'
          : '바뀐 파일이 없습니다. 세대 ' + r.json.generation + '이(가) 계속 운영 중입니다.'));
      }
      await loadList(body);
    });
    candBtn.addEventListener('click', async () => {
      candBtn.disabled = true;
      clear(result);
      result.append(h('p', { class: 'muted', text: '후보 묶음을 검사하는 중…' }));
      const r = await api('GET', '/v1/admin/plugins/candidate');
      candBtn.disabled = false;
      clear(result);
      if (!r.ok) return result.append(errorBox(r, '후보를 읽을 수 없습니다:'));
      result.append(renderCandidate(r.json));
    });
    await loadList(body);
  }

  async function loadList(body) {
    const r = await api('GET', '/v1/admin/plugins');
    clear(body);
    body.removeAttribute('aria-busy');
    if (!r.ok) return body.append(errorBox(r));
    const d = r.json;
    body.append(h('div', { class: 'stats' },
      h('div', { class: 'stat' }, h('span', { class: 'n mono', id: 'live-generation', text: d.generation || '없음' }),
        h('span', { class: 'l', text: '운영 중인 세대' })),
      h('div', { class: 'stat' }, h('span', { class: 'n', text: fmtTime(d.loaded_at) || '-' }), h('span', { class: 'l', text: '적용 시각' })),
      h('div', { class: 'stat' }, h('span', { class: 'n', text: d.items.length }), h('span', { class: 'l', text: '플러그인' }))));
    if (Array.isArray(d.last_reload_errors) && d.last_reload_errors.length) {
      body.append(h('div', { class: 'error', id: 'last-reload-errors' },
        h('strong', { text: '마지막 다시 읽기가 거부되었습니다 (지금 규칙은 그대로):' }), pluginErrors(d.last_reload_errors)));
    }
    body.append(h('h3', { text: '파일별 버전' }), table(['종류', 'ID', '이름', '버전', '파일', '내용 해시', '마지막 적재 오류'],
      d.items.map((p) => h('tr', null,
        h('td', { text: KIND_NAMES[p.kind] || p.kind }),
        h('td', null, h('code', { text: p.id })),
        h('td', { text: p.name || '' }),
        h('td', null, h('span', { class: 'badge', text: p.version })),
        h('td', null, h('code', { text: p.file })),
        h('td', null, h('code', { title: p.content_hash || '', text: (p.content_hash || '').slice(0, 12) })),
        h('td', null, p.last_load_error ? h('span', { class: 'badge bad', text: where(p.last_load_error) + ' ' + p.last_load_error.message }) : '-'))),
      { id: 'plugin-table' }));
    const gens = d.generations || [];
    if (gens.length) {
      // the serving generation, then those open cases stay on (a reload's "stay")
      body.append(h('h3', { text: '적재된 세대' }), table(['세대', '적용 시각', '열린 사례', ''],
        gens.map((g) => h('tr', null,
          h('td', null, h('code', { text: g.id })),
          h('td', { text: fmtTime(g.loaded_at) }),
          h('td', { class: 'num', text: g.open_cases }),
          h('td', null, g.serving ? h('span', { class: 'badge live', text: '운영 중' }) : ''))),
        { id: 'generation-table' }));
    }
  }

  const FILE_STATUS = { same: ['같음', ''], changed: ['바뀜', 'warn'], added: ['추가', 'good'], removed: ['삭제', 'bad'] };

  function renderCandidate(c) {
    const box = h('div', { class: 'card', id: 'candidate' });
    box.append(h('h3', null, '후보 세대 ', h('code', { text: c.candidate.generation }), ' ',
      c.candidate.valid ? h('span', { class: 'badge good', text: '검사 통과' }) : h('span', { class: 'badge bad', text: '오류 있음' }),
      ' ', c.same ? h('span', { class: 'badge', text: '운영 중인 세대와 같음' }) : null));
    box.append(h('p', { class: 'muted' }, '운영 중: ', h('code', { text: c.live.generation || '없음' }),
      ' → 후보: ', h('code', { text: c.candidate.generation })));
    if (!c.candidate.valid) {
      box.append(h('div', { class: 'error' }, h('strong', { text: '이 후보는 적용할 수 없습니다:' }), pluginErrors(c.candidate.errors || [])));
    }
    const changed = c.files.filter((f) => f.status !== 'same');
    // what differs first: each changed file's diff, then every file
    for (const f of changed) {
      box.append(h('h3', null, h('code', { text: f.path }), ' ', h('span', { class: 'badge ' + FILE_STATUS[f.status][1], text: FILE_STATUS[f.status][0] })),
        renderDiff(f.live_text || '', f.candidate_text || ''));
    }
    const order = { changed: 0, added: 1, removed: 2, same: 3 };
    const files = c.files.slice().sort((a, b) => order[a.status] - order[b.status] || a.path.localeCompare(b.path));
    box.append(h('h3', { text: '파일 ' + c.files.length + '개 (바뀐 것 ' + changed.length + '개)' }),
      table(['파일', '상태', '운영 해시', '후보 해시'], files.map((f) => h('tr', { 'data-file': f.path },
        h('td', null, h('code', { text: f.path })),
        h('td', null, h('span', { class: 'badge ' + FILE_STATUS[f.status][1], text: FILE_STATUS[f.status][0] })),
        h('td', null, h('code', { text: (f.live_hash || '-').slice(0, 12) })),
        h('td', null, h('code', { text: (f.candidate_hash || '-').slice(0, 12) })))), { id: 'candidate-files' }));
    if (!changed.length) box.append(h('p', { class: 'muted', text: '바뀐 파일이 없습니다.' }));
    return box;
  }

  // A line diff (longest common subsequence), unchanged runs folded.
  function renderDiff(a, b) {
    const x = a.split('\n'), y = b.split('\n');
    const out = h('div', { class: 'diff' });
    if (x.length * y.length > 4e6) {
      out.append(h('div', { class: 'gap', text: '파일이 커서 줄 단위 비교를 생략합니다.' }));
      return out;
    }
    const n = x.length, m = y.length, w = m + 1;
    const L = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        L[i * w + j] = x[i] === y[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
    const ops = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) { ops.push([' ', x[i], i + 1, j + 1]); i++; j++; }
      else if (j < m && (i === n || L[i * w + j + 1] >= L[(i + 1) * w + j])) { ops.push(['+', y[j], null, j + 1]); j++; }
      else { ops.push(['-', x[i], i + 1, null]); i++; }
    }
    const CONTEXT = 3;
    const keep = ops.map(() => false);
    ops.forEach((op, k) => {
      if (op[0] !== ' ') for (let t = Math.max(0, k - CONTEXT); t <= Math.min(ops.length - 1, k + CONTEXT); t++) keep[t] = true;
    });
    let skipped = 0;
    ops.forEach((op, k) => {
      if (!keep[k]) { skipped++; return; }
      if (skipped) { out.append(h('div', { class: 'gap', text: '… 같은 줄 ' + skipped + '개 …' })); skipped = 0; }
      const line = (op[0] === '+' ? '+' : op[0] === '-' ? '-' : ' ') + String(op[3] || op[2]).padStart(5) + '  ' + op[1];
      out.append(h('div', { class: op[0] === '+' ? 'add' : op[0] === '-' ? 'del' : '', text: line }));
    });
    if (skipped) out.append(h('div', { class: 'gap', text: '… 같은 줄 ' + skipped + '개 …' }));
    return out;
  }

  // Any JSON as nested tables and lists (the shadow replay report).
  function renderJson(v, depth) {
    depth = depth || 0;
    if (v === null || v === undefined) return h('span', { class: 'muted', text: '없음' });
    if (typeof v !== 'object') return h('span', { text: String(v) });
    if (depth > 6) return h('code', { text: JSON.stringify(v) });
    if (Array.isArray(v)) {
      if (!v.length) return h('span', { class: 'muted', text: '(비어 있음)' });
      if (v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
        const keys = [...new Set(v.slice(0, 200).flatMap((x) => Object.keys(x)))];
        return table(keys, v.slice(0, 200).map((x) => h('tr', null, keys.map((k) => h('td', null, renderJson(x[k], depth + 1))))));
      }
      return h('ul', null, v.slice(0, 200).map((x) => h('li', null, renderJson(x, depth + 1))));
    }
    return h('div', { class: 'json' }, h('dl', null, Object.entries(v).map(([k, x]) => [h('dt', { text: k }), h('dd', null, renderJson(x, depth + 1))])));
  }

  // ---- deadlines ----
  async function pageDeadlines(root) {
    pageHeader(root, '기한', () => route());
    const r = await listAll('/v1/deadlines', {});
    if (r.error) return root.append(errorBox(r.error));
    let today = state.today;
    const clock = await api('GET', '/v1/admin/clock');
    if (clock.ok) today = state.today = clock.json.today;
    today = today || kstToday();
    const items = r.items;
    const t = dayNumber(today);
    const overdue = items.filter((d) => d.overdue || dayNumber(d.due_on) < t);
    const week = items.filter((d) => !overdue.includes(d) && dayNumber(d.due_on) <= t + 7);
    root.append(h('p', { class: 'muted' }, '업무 날짜 ', h('strong', { id: 'business-date', text: today }),
      r.complete ? '' : ' · 기한이 많아 앞의 일부만 보입니다.'));
    root.append(h('div', { class: 'stats' },
      h('div', { class: 'stat bad' }, h('span', { class: 'n', id: 'overdue-count', text: overdue.length }), h('span', { class: 'l', text: '기한 지남' })),
      h('div', { class: 'stat warn' }, h('span', { class: 'n', id: 'week-count', text: week.length }), h('span', { class: 'l', text: '7일 안에 도래' })),
      h('div', { class: 'stat' }, h('span', { class: 'n', id: 'open-count', text: items.length }), h('span', { class: 'l', text: '열린 기한 전체' }))));

    root.append(h('div', { class: 'card' }, h('h3', { text: '날짜별 기한' }),
      h('div', { class: 'legend' }, h('span', null, h('span', { class: 'swatch overdue' }), '기한 지남'),
        h('span', null, h('span', { class: 'swatch due' }), '도래 예정')),
      chart(items, t)));

    // Per organisation, team and worker: what the items carry (org, team,
    // assigned_to when the server has them), else the caller's organisation.
    const groups = [['기관별', (d) => d.org || d.org_id || '우리 기관', 'by-org']];
    if (items.some((d) => d.team)) groups.push(['팀별', (d) => d.team || '(팀 없음)', 'by-team']);
    groups.push(['담당자별', (d) => d.assigned_to || d.assignee || '(담당자 없음)', 'by-worker']);
    const grid = h('div', { class: 'grid2' });
    for (const [title, key, id] of groups) grid.append(h('div', { class: 'card' }, h('h3', { text: title }), groupTable(items, key, t, id)));
    root.append(grid);

    const kinds = [...new Set(items.map((d) => d.label || d.kind))];
    root.append(h('div', { class: 'card' }, h('h3', { text: '기한이 지난 일 (' + overdue.length + '건)' }),
      overdue.length ? table(['기한', '종류', '사례', '단계', '사업', '담당자', '지난 날'], overdue.map((d) => h('tr', { class: 'overdue-row' },
        h('td', { text: d.due_on }),
        h('td', { text: d.label || d.kind }),
        h('td', null, h('code', { text: d.case_id || d.referral_id || '' })),
        h('td', { text: d.stage || '-' }),
        h('td', { text: d.program || '' }),
        h('td', { text: d.assigned_to || '-' }),
        h('td', { class: 'num', text: (t - dayNumber(d.due_on)) + '일' }))), { id: 'overdue-table' })
        : h('p', { class: 'muted', id: 'no-overdue', text: '기한이 지난 일이 없습니다.' }),
      kinds.length ? h('p', { class: 'muted', text: '종류: ' + kinds.join(', ') }) : null));
  }

  function groupTable(items, key, t, id) {
    const rows = new Map();
    for (const d of items) {
      const k = key(d);
      const g = rows.get(k) || { overdue: 0, week: 0, later: 0 };
      const day = dayNumber(d.due_on);
      if (d.overdue || day < t) g.overdue++;
      else if (day <= t + 7) g.week++;
      else g.later++;
      rows.set(k, g);
    }
    if (!rows.size) return h('p', { class: 'muted', text: '열린 기한이 없습니다.' });
    return table(['', { text: '지남', class: 'num' }, { text: '7일 안', class: 'num' }, { text: '그 뒤', class: 'num' }, { text: '합계', class: 'num' }],
      [...rows.entries()].sort((a, b) => b[1].overdue - a[1].overdue).map(([k, g]) => h('tr', null,
        h('td', { text: k }), h('td', { class: 'num', text: g.overdue }), h('td', { class: 'num', text: g.week }),
        h('td', { class: 'num', text: g.later }), h('td', { class: 'num', text: g.overdue + g.week + g.later }))), { id: id });
  }

  // Bars per day from 30 days back to 60 ahead: overdue in red, due in blue,
  // a dashed line at today; deadlines outside the window are counted aside.
  function chart(items, t) {
    const from = t - 30, to = t + 60, days = to - from + 1;
    const counts = new Array(days).fill(null).map(() => [0, 0]);
    let before = 0, after = 0;
    for (const d of items) {
      const day = dayNumber(d.due_on);
      if (day < from) { before++; continue; }
      if (day > to) { after++; continue; }
      counts[day - from][(d.overdue || day < t) ? 0 : 1]++;
    }
    const max = Math.max(1, ...counts.map((c) => c[0] + c[1]));
    const W = 900, H = 220, left = 36, right = 24, top = 14, bottom = 34;
    const bw = (W - left - right) / days, ph = H - top - bottom;
    const y = (v) => top + ph - (v / max) * ph;
    const g = s('svg', { class: 'chart', id: 'deadline-chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': '날짜별 기한 그래프' }, s('title', { text: '날짜별 열린 기한 (지난 30일 ~ 앞으로 60일)' }));
    const step = max <= 5 ? 1 : Math.ceil(max / 5);
    for (let v = 0; v <= max; v += step) {
      g.append(s('line', { class: 'axis', x1: left, x2: W - right, y1: y(v), y2: y(v) }),
        s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', text: v }));
    }
    counts.forEach(([o, d], k) => {
      const x = left + k * bw + 1, w = Math.max(1, bw - 2);
      if (o) g.append(s('rect', { class: 'bar-overdue', x, width: w, y: y(o), height: y(0) - y(o), 'data-date': dateOf(from + k) },
        s('title', { text: dateOf(from + k) + ': 기한 지남 ' + o + '건' })));
      if (d) g.append(s('rect', { class: 'bar-due', x, width: w, y: y(o + d), height: y(o) - y(o + d), 'data-date': dateOf(from + k) },
        s('title', { text: dateOf(from + k) + ': 도래 예정 ' + d + '건' })));
      if ((from + k - t) % 15 === 0) {
        g.append(s('text', { x: x + w / 2, y: H - bottom + 16, 'text-anchor': 'middle', text: dateOf(from + k).slice(5) }));
      }
    });
    const tx = left + (t - from) * bw + bw / 2;
    g.append(s('line', { class: 'today', x1: tx, x2: tx, y1: top - 6, y2: H - bottom + 4 }),
      s('text', { class: 'label', x: tx, y: H - 4, 'text-anchor': 'middle', text: '오늘' }));
    const wrap = h('div', null, g);
    if (before || after) {
      wrap.append(h('p', { class: 'muted', text: '그래프 밖: 30일보다 전 ' + before + '건, 60일보다 뒤 ' + after + '건' }));
    }
    return wrap;
  }

  // ---- agencies ----
  function parseMetrics(text) {
    const out = [];
    for (const line of (text || '').split('\n')) {
      const m = /^([a-z_]+)\{([^}]*)\}\s+([-0-9.e+]+)$/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const p of m[2].matchAll(/([a-z_]+)="([^"]*)"/g)) labels[p[1]] = p[2];
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }

  const CIRCUIT = { 0: ['닫힘 (정상)', 'good'], 1: ['열림 (전송 멈춤)', 'bad'], 2: ['반열림 (시험 전송)', 'warn'] };
  const OUTBOX_KIND = { referral: '의뢰', answer: '회신', progress: '진행 상황' };

  async function pageAgencies(root) {
    pageHeader(root, '연계 기관', () => route());
    const [metrics, queued, dead] = await Promise.all([
      fetch('/metrics', { cache: 'no-store', credentials: 'omit' }).then((r) => r.text()).catch(() => ''),
      listAll('/v1/admin/outbox', { status: 'queued' }, 4),
      listAll('/v1/admin/outbox', { status: 'dead' }, 4)]);
    if (queued.error) return root.append(errorBox(queued.error));
    const agencies = new Map();
    const get = (id) => agencies.get(id) || agencies.set(id, { state: 0, queued: 0, delivered: 0, dead: 0, inflight: 0 }).get(id);
    for (const m of parseMetrics(metrics)) {
      if (!m.labels.agency) continue;
      const a = get(m.labels.agency);
      if (m.name === 'sarye_outbox_breaker_state') a.state = m.value;
      else if (m.name === 'sarye_outbox_messages' && m.labels.status === 'queued') a.queued = m.value;
      else if (m.name === 'sarye_outbox_messages' && m.labels.status === 'dead') a.dead = m.value;
      else if (m.name === 'sarye_outbox_messages' && m.labels.status === 'delivered') a.delivered = m.value;
      else if (m.name === 'sarye_outbox_inflight') a.inflight = m.value;
    }
    root.append(h('div', { class: 'card' }, h('h3', { text: '기관별 회로 상태' }),
      agencies.size ? table(['기관', '회로', { text: '대기', class: 'num' }, { text: '전송 중', class: 'num' },
        { text: '전달됨', class: 'num' }, { text: '실패', class: 'num' }],
      [...agencies.entries()].map(([id, a]) => h('tr', { 'data-agency': id },
        h('td', null, h('code', { text: id })),
        h('td', null, h('span', { class: 'badge ' + (CIRCUIT[a.state] || CIRCUIT[0])[1], text: (CIRCUIT[a.state] || CIRCUIT[0])[0] })),
        h('td', { class: 'num', text: a.queued }), h('td', { class: 'num', text: a.inflight }),
        h('td', { class: 'num', text: a.delivered }), h('td', { class: 'num', text: a.dead }))), { id: 'circuit-table' })
        : h('p', { class: 'muted', text: '연계 기관으로 보낸 메시지가 아직 없습니다.' })));

    const result = h('div', { id: 'retry-result' });
    root.append(h('div', { class: 'card' }, h('h3', { text: '보낼 메시지 (대기열 ' + queued.items.length + '건)' }),
      queued.items.length ? outboxTable(queued.items, null, 'outbox-queued') : h('p', { class: 'muted', text: '대기 중인 메시지가 없습니다.' })));
    root.append(h('div', { class: 'card' }, h('h3', { text: '실패한 메시지 (' + (dead.items || []).length + '건)' }),
      h('p', { class: 'muted', text: '기관이 거부했거나 재시도 한도를 넘은 메시지입니다. 원인을 고친 뒤 다시 보낼 수 있습니다.' }),
      result,
      dead.error ? errorBox(dead.error) : (dead.items.length ? outboxTable(dead.items, async (m, btn) => {
        btn.disabled = true;
        clear(result);
        const r = await api('POST', '/v1/admin/outbox/' + encodeURIComponent(m.id) + '/retry');
        if (!r.ok) { btn.disabled = false; return result.append(errorBox(r, '다시 보내기 실패:')); }
        result.append(h('div', { class: 'ok', text: m.id + ' 메시지를 다시 대기열에 넣었습니다.' }));
        btn.closest('tr').remove();
      }, 'outbox-dead') : h('p', { class: 'muted', text: '실패한 메시지가 없습니다.' }))));
  }

  function outboxTable(items, retry, id) {
    const heads = ['메시지', '기관', '종류', '주제', { text: '시도', class: 'num' }, '다음 시도', '마지막 응답'];
    if (retry) heads.push('');
    return table(heads, items.map((m) => {
      const tr = h('tr', { 'data-id': m.id },
        h('td', null, h('code', { text: m.id })),
        h('td', { text: m.agency }),
        h('td', { text: OUTBOX_KIND[m.kind] || m.kind }),
        h('td', null, h('code', { text: m.topic })),
        h('td', { class: 'num', text: m.attempts }),
        h('td', { text: m.next_at_ms ? fmtTime(new Date(m.next_at_ms).toISOString()) : '바로' }),
        h('td', { text: [m.last_status, m.last_error].filter((x) => x !== null && x !== undefined && x !== '').join(' ') || '-' }));
      if (retry) {
        const btn = h('button', { type: 'button', class: 'small retry-button', text: '다시 보내기' });
        btn.addEventListener('click', () => retry(m, btn));
        tr.append(h('td', null, btn));
      }
      return tr;
    }), { id: id });
  }

  // ---- audit ----
  async function pageAudit(root) {
    pageHeader(root, '감사 기록', null);
    const person = h('input', { name: 'person_id', id: 'audit-person', placeholder: 'per_...', size: 30 });
    const actor = h('input', { name: 'actor', id: 'audit-actor', placeholder: '사용자' });
    const since = h('input', { name: 'since', id: 'audit-since', type: 'date' });
    const out = h('div', { id: 'audit-result' });
    const form = h('form', { class: 'card row', id: 'audit-form' },
      h('label', null, '대상자 ID', person), h('label', null, '열람자', actor), h('label', null, '이후', since),
      h('button', { type: 'submit', text: '조회' }));
    const p = new URLSearchParams(location.hash.split('?')[1] || '');
    person.value = p.get('person_id') || '';
    actor.value = p.get('actor') || '';
    since.value = p.get('since') || '';
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if (person.value.trim()) q.set('person_id', person.value.trim());
      if (actor.value.trim()) q.set('actor', actor.value.trim());
      if (since.value) q.set('since', since.value);
      const hash = '#/audit' + (q.toString() ? '?' + q.toString() : '');
      if (location.hash === hash) route(); else location.hash = hash;
    });
    root.append(h('p', { class: 'muted', text: '개인정보를 다룬 모든 응답은 나가기 전에 기록됩니다 (누가, 언제, 어떤 대상자와 사례를, 어떤 근거로).' }), form, out);
    const query = {};
    for (const k of ['person_id', 'actor', 'since']) if (p.get(k)) query[k] = p.get(k);
    const r = await listAll('/v1/audit', query, 10);
    if (r.error) return out.append(errorBox(r.error));
    const items = r.items;
    // Who read which person: per person, each reader and how often.
    const reads = items.filter((a) => a.person_id && a.action.startsWith('GET '));
    const per = new Map();
    for (const a of reads) {
      const m = per.get(a.person_id) || new Map();
      const e = m.get(a.actor) || { n: 0, last: '', org: a.org, role: a.role };
      e.n++;
      if (a.at > e.last) e.last = a.at;
      m.set(a.actor, e);
      per.set(a.person_id, m);
    }
    out.append(h('div', { class: 'card' }, h('h3', { text: '누가 어떤 대상자를 열람했나 (' + per.size + '명)' }),
      per.size ? table(['대상자', '열람자', { text: '횟수', class: 'num' }, '마지막 열람'],
        [...per.entries()].flatMap(([pid, m]) => [...m.entries()].map(([who, e], k) => h('tr', { class: 'reader-row', 'data-person': pid },
          h('td', null, k === 0 ? h('a', { href: '#/audit?person_id=' + encodeURIComponent(pid), text: pid }) : ''),
          h('td', { text: who + ' (' + e.org + ', ' + (ROLE_NAMES[e.role] || e.role) + ')' }),
          h('td', { class: 'num', text: e.n }),
          h('td', { text: fmtTime(e.last) })))), { id: 'readers-table' })
        : h('p', { class: 'muted', text: '열람 기록이 없습니다.' })));
    out.append(h('div', { class: 'card' }, h('h3', { text: '기록 ' + items.length + '건' + (r.complete ? '' : ' (앞의 일부)') }),
      table(['순번', '시각', '행위자', '역할', '기관', '행위', '대상자', '사례', '근거', '요청'], items.map((a) => h('tr', null,
        h('td', { class: 'num', text: a.seq }),
        h('td', { text: fmtTime(a.at) }),
        h('td', { text: a.actor }),
        h('td', { text: ROLE_NAMES[a.role] || a.role }),
        h('td', { text: a.org }),
        h('td', null, h('span', { class: 'badge ' + (a.action.startsWith('GET ') ? '' : 'warn'), text: a.action.startsWith('GET ') ? '열람' : '기록' }), ' ', h('code', { text: a.action })),
        h('td', null, a.person_id ? h('code', { text: a.person_id }) : '-'),
        h('td', null, a.case_id ? h('code', { text: a.case_id }) : '-'),
        h('td', null, a.purpose ? h('code', { text: a.purpose }) : '-'),
        h('td', null, h('code', { class: 'muted', text: a.request_id })))), { id: 'audit-table' })));
  }

  // ---- start ----
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  start();
})();
