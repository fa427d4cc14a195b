// viz.html: draws every map of the view in #viz-data with ECharts. Texts
// from the data reach the page through textContent only.
(function () {
  'use strict';
  var view = JSON.parse(document.getElementById('viz-data').textContent);
  var colors = {'query': '#d9480f', 'relevant document': '#2f9e44', 'other document': '#adb5bd'};
  var groups = ['other document', 'relevant document', 'query']; // queries drawn last, on top
  var relevant = {};
  view.links.forEach(function (l) { (relevant[l[0]] = relevant[l[0]] || []).push(l[1]); });
  var tip = document.getElementById('tip');
  var status = document.getElementById('status');
  var grid = document.getElementById('maps');

  function unique(xs) { return xs.filter(function (x, i) { return xs.indexOf(x) === i; }); }
  function cut(s, n) { return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

  var models = unique(view.maps.map(function (m) { return m.model; }));
  grid.style.gridTemplateColumns = 'repeat(' + models.length + ', minmax(0, 1fr))';
  var drawn = [];

  function seriesOf(map) {
    var series = groups.map(function (g) {
      var pts = [];
      view.items.forEach(function (it, i) {
        if (it.group === g) pts.push([map.points[i].x, map.points[i].y, i]);
      });
      return {type: 'scatter', name: g, data: pts, symbolSize: g === 'query' ? 7 : 4,
        itemStyle: {color: colors[g], opacity: g === 'other document' ? 0.6 : 0.9}, animation: false};
    });
    series.push({id: 'links', type: 'lines', name: 'links', coordinateSystem: 'cartesian2d', data: [],
      lineStyle: {color: '#d9480f', width: 1.5, opacity: 0.9}, z: 5, animation: false});
    series.push({id: 'picked', type: 'scatter', name: 'picked', data: [], symbolSize: 14,
      itemStyle: {color: 'rgba(0,0,0,0)', borderColor: '#000', borderWidth: 2}, z: 6, animation: false});
    return series;
  }

  function caption(map) {
    var s = map.model + ' \u00b7 ' + map.method.toUpperCase();
    if (map.explained) s += ' \u00b7 variance ' + map.explained.map(function (x) { return (100 * x).toFixed(1) + '%'; }).join(' + ');
    if (map.trustworthiness) s += ' \u00b7 trustworthiness(10) ' + map.trustworthiness.toFixed(3);
    return s;
  }

  function pick(i) {
    drawn.forEach(function (d) {
      var links = [], picked = [];
      if (i >= 0) {
        var p = d.map.points[i];
        picked.push([p.x, p.y, i]);
        (relevant[i] || []).forEach(function (j) {
          var q = d.map.points[j];
          links.push({coords: [[p.x, p.y], [q.x, q.y]]});
        });
      }
      d.chart.setOption({series: [{id: 'links', data: links}, {id: 'picked', data: picked}]});
    });
    if (i < 0) { status.textContent = ''; return; }
    var it = view.items[i];
    status.textContent = 'query ' + it.id + ' (' + (relevant[i] || []).length + ' relevant): ' + cut(it.text, 200);
  }

  function showTip(i, ev) {
    var it = view.items[i];
    tip.textContent = '';
    var head = document.createElement('b');
    head.textContent = it.group + ' ' + it.id;
    tip.appendChild(head);
    tip.appendChild(document.createTextNode(cut(it.text, 300)));
    tip.style.display = 'block';
    var x = ev && ev.clientX !== undefined ? ev.clientX : 0, y = ev && ev.clientY !== undefined ? ev.clientY : 0;
    tip.style.left = Math.min(x + 14, window.innerWidth - 440) + 'px';
    tip.style.top = (y + 14) + 'px';
  }

  var methods = unique(view.maps.map(function (m) { return m.method; }));
  methods.forEach(function (method) {
    models.forEach(function (model) {
      var map = view.maps.filter(function (m) { return m.model === model && m.method === method; })[0];
      var box = document.createElement('div');
      box.className = 'map';
      grid.appendChild(box);
      if (!map) return;
      var cap = document.createElement('div');
      cap.className = 'cap';
      cap.textContent = caption(map);
      box.appendChild(cap);
      var el = document.createElement('div');
      el.className = 'chart';
      box.appendChild(el);
      var chart = echarts.init(el, null, {renderer: 'canvas'});
      chart.setOption({
        animation: false,
        legend: {data: groups, top: 0},
        grid: {left: 10, right: 10, top: 30, bottom: 10},
        xAxis: {type: 'value', scale: true, axisLabel: {show: false}, axisLine: {show: false}, axisTick: {show: false}, splitLine: {show: false}},
        yAxis: {type: 'value', scale: true, axisLabel: {show: false}, axisLine: {show: false}, axisTick: {show: false}, splitLine: {show: false}},
        dataZoom: [{type: 'inside', xAxisIndex: 0, filterMode: 'none'}, {type: 'inside', yAxisIndex: 0, filterMode: 'none'}],
        toolbox: {feature: {saveAsImage: {name: 'map-' + model + '-' + method}}},
        series: seriesOf(map)
      });
      chart.on('mouseover', function (p) {
        if (p.seriesType === 'scatter' && p.data) showTip(p.data[2], p.event && p.event.event);
      });
      chart.on('mouseout', function () { tip.style.display = 'none'; });
      chart.on('click', function (p) {
        if (p.seriesType !== 'scatter' || !p.data) return;
        var i = p.data[2];
        pick(view.items[i].group === 'query' ? i : -1);
      });
      chart.getZr().on('click', function (e) { if (!e.target) pick(-1); });
      drawn.push({chart: chart, map: map});
    });
  });
  window.addEventListener('resize', function () { drawn.forEach(function (d) { d.chart.resize(); }); });
  // For tests and the console: the charts and the two interactions.
  window.ragtuneViz = {charts: drawn.map(function (d) { return d.chart; }), pick: pick, hover: showTip, ready: true};
})();
