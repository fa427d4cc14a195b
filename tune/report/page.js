'use strict';
// ragtune study report. Study data comes from the JSON element and reaches
// the page only as text (textContent, text nodes, chart labels drawn by
// ECharts); tooltips are DOM nodes built the same way, never HTML strings.
(function () {
  const D = JSON.parse(document.getElementById('ragtune-data').textContent);
  const charts = {};
  const byNumber = new Map(D.trials.map(t => [t.number, t]));
  const complete = D.trials.filter(t => t.state === 'COMPLETE');
  const best = new Set(D.best);
  const main = D.metrics[0];
  const palette = ['#1c64b5', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#0b7285', '#e67700', '#5c940d', '#364fc7', '#a61e4d'];
  const svgIcon = 'path://M4 4h16v16H4z M7 15l3-4 2 3 2-2 3 3';

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function fmt(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
      const a = Math.abs(v);
      if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e');
      return String(+v.toPrecision(4));
    }
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function tip(title, rows) {
    const d = el('div', null, 'tip');
    d.appendChild(el('b', title));
    for (const [k, v] of rows) {
      const r = el('div');
      r.appendChild(el('span', k + ': ', 'k'));
      r.appendChild(document.createTextNode(fmt(v)));
      d.appendChild(r);
    }
    return d;
  }
  function trialTip(number, rows) {
    const t = byNumber.get(number);
    if (!t) return tip('', rows || []);
    const params = D.params.filter(p => p.name in t.params).map(p => [p.name, t.params[p.name]]);
    return tip('Trial ' + t.number + ' (' + t.state + (best.has(t.number) ? ', best' : '') + ')', (rows || []).concat(params));
  }
  function empty(id, text) {
    const node = document.getElementById(id);
    if (node) node.replaceWith(el('p', text, 'empty'));
  }
  function download(blob, name) {
    const a = el('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 2000);
  }
  // An SVG copy of a chart: the same option drawn once by ECharts' SVG renderer.
  function svgOf(c) {
    const w = c.getWidth(), h = c.getHeight();
    const box = el('div');
    box.style.cssText = 'position:absolute;left:-20000px;top:0;width:' + w + 'px;height:' + h + 'px';
    document.body.appendChild(box);
    const s = echarts.init(box, null, { renderer: 'svg', width: w, height: h });
    const o = c.getOption();
    o.animation = false;
    o.toolbox = [{ show: false }];
    s.setOption(o);
    const text = s.renderToSVGString();
    s.dispose();
    box.remove();
    return text;
  }
  function fileName(s) { return ('ragtune-' + D.study + '-' + s).replace(/[^A-Za-z0-9._-]+/g, '_'); }
  // chart makes (or finds) the chart in element id and sets its option,
  // adding the PNG and SVG buttons.
  function chart(id, option, name) {
    const node = document.getElementById(id);
    if (!node) return null;
    let c = charts[id];
    if (!c) {
      c = echarts.init(node, null, { renderer: 'canvas' });
      charts[id] = c;
    }
    option.animation = false;
    for (const key of ['xAxis', 'yAxis']) {
      const axis = option[key];
      if (axis && !Array.isArray(axis) && axis.type !== 'category') axis.axisLabel = Object.assign({ formatter: v => fmt(v), hideOverlap: true }, axis.axisLabel || {});
    }
    option.toolbox = {
      right: 6, top: 0, itemSize: 14,
      feature: {
        saveAsImage: { title: 'PNG', name: fileName(name), pixelRatio: 2, backgroundColor: '#fff' },
        mySVG: { show: true, title: 'SVG', icon: svgIcon, onclick: () => download(new Blob([svgOf(c)], { type: 'image/svg+xml' }), fileName(name) + '.svg') },
      },
    };
    if (option.tooltip && !option.tooltip.confine) option.tooltip.confine = true;
    c.setOption(option, true);
    return c;
  }
  function select(id, items, value, onchange) {
    const s = document.getElementById(id);
    if (!s) return null;
    for (const [v, label] of items) {
      const o = el('option', label);
      o.value = v;
      s.appendChild(o);
    }
    if (value !== undefined) s.value = value;
    s.addEventListener('change', onchange);
    return s;
  }
  // log scale where positive values span more than two decades (FLOPs).
  function axisType(values) {
    const v = values.filter(isNum);
    if (!v.length || v.some(x => x <= 0)) return 'value';
    return Math.max(...v) / Math.min(...v) > 100 ? 'log' : 'value';
  }
  function lowerIsBetter(name) { return !/ndcg|recall|mrr|map|precision|accuracy|score|hit/i.test(name); }

  // Quantities a trial can be plotted by: objectives, numeric attributes, duration.
  const quantities = [];
  D.metrics.forEach((m, i) => quantities.push({ id: 'obj:' + i, name: m, label: m + ' (' + D.directions[i] + ')', min: D.directions[i] === 'minimize', get: t => (t.values ? t.values[i] : null) }));
  (D.numeric_attrs || []).forEach(k => quantities.push({ id: 'attr:' + k, name: k, label: k, min: lowerIsBetter(k), get: t => t.attrs[k] }));
  quantities.push({ id: 'duration', name: 'duration (s)', label: 'duration (s)', min: true, get: t => t.duration });
  const quantity = id => quantities.find(q => q.id === id);

  // front2 is the Pareto front of points on two axes, best-first along x.
  function front2(pts, minX, minY) {
    const s = pts.map(p => ({ p, x: minX ? p.x : -p.x, y: minY ? p.y : -p.y }));
    s.sort((a, b) => a.x - b.x || a.y - b.y);
    const out = [];
    let bestY = Infinity, lastX = null;
    for (const q of s) {
      if (q.y < bestY || (q.y === bestY && q.x === lastX)) {
        out.push(q.p);
        bestY = q.y;
        lastX = q.x;
      }
    }
    return out;
  }

  function pareto() {
    const sx = select('pareto-x', quantities.map(q => [q.id, q.label]), D.pareto_x, draw);
    const sy = select('pareto-y', quantities.map(q => [q.id, q.label]), D.pareto_y, draw);
    if (!sx) return;
    function draw() {
      const qx = quantity(sx.value), qy = quantity(sy.value);
      const pts = complete.map(t => ({ n: t.number, x: qx.get(t), y: qy.get(t) })).filter(p => isNum(p.x) && isNum(p.y));
      const front = front2(pts, qx.min, qy.min);
      const onFront = new Set(front.map(p => p.n));
      chart('chart-pareto', {
        grid: { left: 70, right: 30, top: 40, bottom: 55 },
        legend: { top: 4, data: ['trials', 'Pareto front'] },
        tooltip: { trigger: 'item', formatter: p => trialTip(p.value[2], [[qx.name, p.value[0]], [qy.name, p.value[1]]]) },
        xAxis: { type: axisType(pts.map(p => p.x)), name: qx.label, nameLocation: 'middle', nameGap: 32, scale: true },
        yAxis: { type: axisType(pts.map(p => p.y)), name: qy.label, nameLocation: 'middle', nameGap: 52, scale: true },
        series: [
          { name: 'trials', type: 'scatter', symbolSize: 8, itemStyle: { color: '#9aa5b1' }, data: pts.filter(p => !onFront.has(p.n)).map(p => [p.x, p.y, p.n]) },
          { name: 'Pareto front', type: 'line', symbolSize: 11, itemStyle: { color: '#d9480f' }, lineStyle: { width: 2 }, data: front.map(p => [p.x, p.y, p.n]) },
        ],
      }, 'pareto');
      if (!pts.length) empty('chart-pareto', 'No complete trial has both quantities.');
    }
    draw();
  }

  function history() {
    const s = select('history-objective', D.metrics.map((m, i) => [String(i), m + ' (' + D.directions[i] + ')']), '0', draw);
    if (!s) return;
    function draw() {
      const i = +s.value, m = D.metrics[i], minimize = D.directions[i] === 'minimize';
      const pts = complete.filter(t => isNum(t.values[i])).map(t => [t.number, t.values[i], t.number]);
      const bestLine = [];
      let b = null;
      for (const p of pts) {
        if (b === null || (minimize ? p[1] < b : p[1] > b)) b = p[1];
        bestLine.push([p[0], b, p[2]]);
      }
      const marks = D.baselines.filter(x => x.metric === m).map(x => ({ name: x.system, yAxis: x.value, label: { formatter: x.system, position: 'insideEndTop' } }));
      chart('chart-history', {
        grid: { left: 70, right: 30, top: 40, bottom: 50 },
        legend: { top: 4 },
        tooltip: { trigger: 'item', formatter: p => (p.componentType === 'markLine' ? tip(p.name, [[m, p.value]]) : trialTip(p.value[2], [[m, p.value[1]]])) },
        xAxis: { type: 'value', name: 'trial', nameLocation: 'middle', nameGap: 30, minInterval: 1 },
        yAxis: { type: 'value', name: m, nameLocation: 'middle', nameGap: 52, scale: true },
        series: [
          { name: 'trial', type: 'scatter', symbolSize: 7, itemStyle: { color: '#1c64b5' }, data: pts,
            markLine: marks.length ? { symbol: 'none', lineStyle: { type: 'dashed', color: '#7b8794' }, data: marks } : undefined },
          { name: 'best so far', type: 'line', step: 'end', showSymbol: false, itemStyle: { color: '#d9480f' }, data: bestLine },
        ],
      }, 'history');
      if (!pts.length) empty('chart-history', 'No trial has completed yet.');
    }
    draw();
  }

  function curves() {
    if (!document.getElementById('chart-curves')) return;
    const minimize = D.directions[0] === 'minimize';
    const withCurve = t => t.intermediate && t.intermediate.length > 0;
    const top = complete.filter(t => withCurve(t) && isNum(t.values[0]))
      .sort((a, b) => (minimize ? a.values[0] - b.values[0] : b.values[0] - a.values[0])).slice(0, 10);
    const pruned = D.trials.filter(t => t.state === 'PRUNED' && withCurve(t)).slice(-20);
    if (!top.length && !pruned.length) {
      empty('chart-curves', 'No trial reported intermediate values.');
      return;
    }
    const series = [];
    top.forEach((t, k) => series.push({
      name: 'trial ' + t.number, type: 'line', symbolSize: 5, itemStyle: { color: palette[k % palette.length] },
      data: t.intermediate.filter(p => isNum(p[1])).map(p => [p[0], p[1], t.number]),
    }));
    for (const t of pruned) {
      const data = t.intermediate.filter(p => isNum(p[1])).map(p => [p[0], p[1], t.number]);
      series.push({
        name: 'trial ' + t.number + ' (pruned)', type: 'line', lineStyle: { type: 'dashed', width: 1 }, itemStyle: { color: '#c92a2a' },
        data: data.map((p, k) => (k === data.length - 1 ? { value: p, symbol: 'triangle', symbolSize: 10 } : { value: p, symbol: 'none' })),
      });
    }
    chart('chart-curves', {
      grid: { left: 70, right: 30, top: 20, bottom: 80 },
      legend: { type: 'scroll', bottom: 0 },
      tooltip: { trigger: 'item', formatter: p => trialTip(p.value[2], [['step', p.value[0]], [main, p.value[1]]]) },
      xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 28, minInterval: 1, scale: true },
      yAxis: { type: 'value', name: main, nameLocation: 'middle', nameGap: 52, scale: true },
      series,
    }, 'learning_curves');
  }

  function importanceBars(id, list, error, title) {
    if (!document.getElementById(id)) return;
    if (!D.importance || error || !list.length) {
      empty(id, title + ': ' + (error || 'no complete trial yet') + '.');
      return;
    }
    const rows = list.slice().reverse();
    chart(id, {
      title: { text: title, left: 'center', top: 2, textStyle: { fontSize: 14 } },
      grid: { left: 10, right: 50, top: 34, bottom: 30, containLabel: true },
      tooltip: { trigger: 'item', formatter: p => tip(p.name, [['importance', p.value]]) },
      xAxis: { type: 'value', max: 1, name: 'importance (' + D.importance.objective + ')', nameLocation: 'middle', nameGap: 24 },
      yAxis: { type: 'category', data: rows.map(r => r.name) },
      series: [{ type: 'bar', data: rows.map(r => ({ name: r.name, value: r.value })), itemStyle: { color: id.endsWith('fanova') ? '#1c64b5' : '#2b8a3e' },
        label: { show: true, position: 'right', formatter: p => fmt(p.value) } }],
    }, title.includes('fANOVA') ? 'param_importance_fanova' : 'param_importance');
  }

  function interactions() {
    if (!document.getElementById('chart-interactions')) return;
    const im = D.importance && D.importance.interactions;
    if (!im) {
      empty('chart-interactions', 'fANOVA interactions: ' + ((D.importance && D.importance.fanova_error) || 'no complete trial yet') + '.');
      return;
    }
    const data = [];
    let top = 0;
    im.matrix.forEach((row, i) => row.forEach((v, j) => { data.push([j, i, v]); top = Math.max(top, v); }));
    chart('chart-interactions', {
      grid: { left: 10, right: 90, top: 20, bottom: 10, containLabel: true },
      tooltip: { trigger: 'item', formatter: p => tip(p.value[0] === p.value[1] ? im.names[p.value[0]] : im.names[p.value[1]] + ' × ' + im.names[p.value[0]], [['variance share', p.value[2]]]) },
      xAxis: { type: 'category', data: im.names, axisLabel: { rotate: 35, interval: 0 }, splitArea: { show: true } },
      yAxis: { type: 'category', data: im.names, inverse: true, axisLabel: { interval: 0 }, splitArea: { show: true } },
      visualMap: { min: 0, max: top || 1, precision: 2, calculable: true, orient: 'vertical', right: 0, top: 'middle', inRange: { color: ['#f8fafc', '#74a9cf', '#0b3c7d'] } },
      series: [{ type: 'heatmap', data, label: { show: im.names.length <= 12, formatter: p => p.value[2].toFixed(2) } }],
    }, 'fanova_interactions_heatmap');
  }

  function parallel() {
    if (!document.getElementById('chart-parallel')) return;
    if (!complete.length) {
      empty('chart-parallel', 'No trial has completed yet.');
      return;
    }
    const axes = [];
    D.params.forEach(p => {
      const a = { dim: axes.length, name: p.name };
      if (p.kind === 'categorical') Object.assign(a, { type: 'category', data: p.choices.map(fmt) });
      else Object.assign(a, { type: p.log ? 'log' : 'value', min: p.low, max: p.high, axisLabel: { formatter: v => fmt(v) } });
      axes.push(a);
    });
    D.metrics.forEach(m => axes.push({ dim: axes.length, name: m, type: 'value', scale: true, nameTextStyle: { fontWeight: 'bold' }, axisLabel: { formatter: v => fmt(v) } }));
    const rows = complete.map(t => D.params.map(p => (p.name in t.params ? (p.kind === 'categorical' ? fmt(t.params[p.name]) : t.params[p.name]) : '-')).concat(t.values.map(v => (isNum(v) ? v : '-'))));
    const vals = complete.map(t => t.values[0]).filter(isNum);
    chart('chart-parallel', {
      parallel: { left: 60, right: 110, top: 50, bottom: 40 },
      parallelAxis: axes,
      tooltip: { trigger: 'item', formatter: p => trialTip(complete[p.dataIndex].number) },
      visualMap: { type: 'continuous', dimension: D.params.length, min: Math.min(...vals), max: Math.max(...vals), precision: 3, right: 0, top: 'middle', calculable: true, text: [main, ''],
        inRange: { color: D.directions[0] === 'minimize' ? ['#0b2545', '#1c64b5', '#d3e3f5'] : ['#d3e3f5', '#1c64b5', '#0b2545'] } },
      series: [{ type: 'parallel', lineStyle: { width: 1.5, opacity: 0.6 }, emphasis: { lineStyle: { width: 3, opacity: 1 } }, data: rows }],
    }, 'parallel_coord');
  }

  function slices() {
    const grid = document.getElementById('slice-grid');
    if (!grid) return;
    if (!complete.length || !D.params.length) {
      grid.replaceWith(el('p', 'No complete trial with parameters yet.', 'empty'));
      return;
    }
    const last = D.trials.length ? D.trials[D.trials.length - 1].number : 0;
    D.params.forEach((p, k) => {
      const box = el('div', null, 'chart');
      box.id = 'chart-slice-' + k;
      grid.appendChild(box);
      const cat = p.kind === 'categorical';
      const pts = complete.filter(t => p.name in t.params && isNum(t.values[0])).map(t => [cat ? fmt(t.params[p.name]) : t.params[p.name], t.values[0], t.number]);
      chart(box.id, {
        title: { text: p.name, left: 'center', top: 0, textStyle: { fontSize: 13 } },
        grid: { left: 60, right: 20, top: 30, bottom: 36 },
        tooltip: { trigger: 'item', formatter: q => trialTip(q.value[2], [[p.name, q.value[0]], [main, q.value[1]]]) },
        xAxis: cat ? { type: 'category', data: p.choices.map(fmt) } : { type: p.log ? 'log' : 'value', min: p.low, max: p.high },
        yAxis: { type: 'value', name: main, scale: true },
        visualMap: { show: false, dimension: 2, min: 0, max: Math.max(last, 1), inRange: { color: ['#a5c8ec', '#0b2545'] } },
        series: [{ type: 'scatter', symbolSize: 7, data: pts }],
      }, 'slice_' + p.name);
    });
  }

  function valTest() {
    const s = select('valtest-pair', D.val_test.map((p, i) => [String(i), p.name]), '0', draw);
    if (!s) return;
    function draw() {
      const pair = D.val_test[+s.value], qv = quantity(pair.val), qt = quantity(pair.test);
      const pts = complete.map(t => [qv.get(t), qt.get(t), t.number]).filter(p => isNum(p[0]) && isNum(p[1]));
      const all = pts.flatMap(p => [p[0], p[1]]);
      const lo = Math.min(...all), hi = Math.max(...all);
      chart('chart-valtest', {
        grid: { left: 70, right: 30, top: 30, bottom: 55 },
        tooltip: { trigger: 'item', formatter: p => trialTip(p.value[2], [['validation ' + pair.name, p.value[0]], ['test ' + pair.name, p.value[1]]]) },
        xAxis: { type: 'value', name: 'validation ' + pair.name, nameLocation: 'middle', nameGap: 32, scale: true },
        yAxis: { type: 'value', name: 'test ' + pair.name, nameLocation: 'middle', nameGap: 52, scale: true },
        series: [
          { type: 'scatter', symbolSize: 8, itemStyle: { color: '#1c64b5' }, data: pts },
          { type: 'line', silent: true, showSymbol: false, lineStyle: { type: 'dashed', color: '#9aa5b1' }, data: pts.length ? [[lo, lo], [hi, hi]] : [], tooltip: { show: false } },
        ],
      }, 'val_vs_test');
    }
    draw();
  }

  function table() {
    const tableEl = document.getElementById('trials-table');
    if (!tableEl) return;
    const cols = [{ name: '#', get: t => t.number }, { name: 'state', get: t => t.state, cls: t => 'state-' + t.state }];
    D.metrics.forEach((m, i) => cols.push({ name: m, get: t => (t.values ? t.values[i] : null) }));
    D.params.forEach(p => cols.push({ name: p.name, get: t => t.params[p.name] }));
    cols.push({ name: 'duration (s)', get: t => t.duration });
    D.attrs.forEach(k => cols.push({ name: k, get: t => t.attrs[k] }));
    if (D.trials.some(t => t.fail_reason)) cols.push({ name: 'failure reason', get: t => t.fail_reason, text: true });
    const head = el('tr');
    const body = tableEl.tBodies[0];
    const rows = D.trials.map(t => {
      const tr = el('tr', null, best.has(t.number) ? 'best' : '');
      for (const c of cols) {
        const td = el('td', fmt(c.get(t)), c.cls ? c.cls(t) : (c.text ? 'text' : ''));
        tr.appendChild(td);
      }
      return { t, tr };
    });
    let sortCol = 0, asc = true;
    function key(v) { return v === undefined || v === null || v === '' ? null : v; }
    function sortBy(k) {
      asc = sortCol === k ? !asc : true;
      sortCol = k;
      const get = cols[k].get;
      rows.sort((a, b) => {
        const x = key(get(a.t)), y = key(get(b.t));
        if (x === null || y === null) return x === y ? 0 : (x === null ? 1 : -1);
        const r = typeof x === 'number' && typeof y === 'number' ? x - y : fmt(x).localeCompare(fmt(y), undefined, { numeric: true });
        return asc ? r : -r;
      });
      head.querySelectorAll('th').forEach((th, i) => th.setAttribute('aria-sort', i === k ? (asc ? 'ascending' : 'descending') : 'none'));
      for (const r of rows) body.appendChild(r.tr);
    }
    cols.forEach((c, k) => {
      const th = el('th', c.name);
      th.addEventListener('click', () => sortBy(k));
      head.appendChild(th);
    });
    tableEl.tHead.appendChild(head);
    sortCol = -1;
    sortBy(0);
  }

  function sections() {
    for (const s of D.sections) {
      for (const c of s.charts) {
        const node = document.getElementById(c.elem);
        if (!node) continue;
        node.style.height = c.height + 'px';
        const o = c.option;
        o.tooltip = Object.assign({ trigger: 'item' }, o.tooltip || {});
        o.tooltip.formatter = p => tip(p.seriesName || '', [[p.name || '', Array.isArray(p.value) ? p.value.map(fmt).join(', ') : p.value]]);
        chart(c.elem, o, s.id + '_' + (c.title || c.elem));
      }
    }
  }

  const steps = [pareto, history, curves,
    () => importanceBars('chart-importance-fanova', D.importance ? D.importance.fanova : [], D.importance && D.importance.fanova_error, 'fANOVA'),
    () => importanceBars('chart-importance-mdi', D.importance ? D.importance.mdi : [], D.importance && D.importance.mdi_error, 'Mean decrease in impurity'),
    interactions, parallel, slices, valTest, sections, table];
  const errors = [];
  for (const step of steps) {
    try {
      step();
    } catch (e) {
      errors.push(String(e));
      console.error('ragtune report: ' + e);
    }
  }
  window.addEventListener('resize', () => Object.values(charts).forEach(c => c.resize()));
  // For tests and scripts: the charts by element id, and SVG exports.
  window.ragtuneReport = { charts, errors, svg: id => svgOf(charts[id]), ready: true };
})();
