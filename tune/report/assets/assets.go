// Package assets holds the third-party files that ragtune's HTML pages embed,
// so that a report opens offline from a file:// URL with no network request.
//
// ECharts (Apache License 2.0, see LICENSE and NOTICE here) is vendored as
// its npm package's dist/echarts.min.js, version 6.1.0. To update it:
// `npm i echarts@VERSION` in a scratch folder and copy dist/echarts.min.js,
// LICENSE and NOTICE over these files.
package assets

import _ "embed"

// EChartsVersion is the vendored ECharts release.
const EChartsVersion = "6.1.0"

// ECharts is the minified ECharts library, to be inlined in a <script> element.
//
//go:embed echarts.min.js
var ECharts string

// EChartsLicense is ECharts' licence text followed by its NOTICE, for pages
// that embed the library to carry alongside it.
//
//go:embed LICENSE
var EChartsLicense string

//go:embed NOTICE
var EChartsNotice string
