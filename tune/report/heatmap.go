package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// WriteHeatmapPNG draws the fANOVA interaction matrix (main effects on the
// diagonal) as a PNG, in Go so that it needs no browser. Labels use a
// built-in bitmap font; characters it lacks print as '?'.
func WriteHeatmapPNG(w io.Writer, d *Data) error {
	if d.Importance == nil || d.Importance.Interactions == nil {
		reason := "no complete trial yet"
		if d.Importance != nil && d.Importance.FanovaError != "" {
			reason = d.Importance.FanovaError
		}
		return fmt.Errorf("no fANOVA interactions to draw: %s", reason)
	}
	in := d.Importance.Interactions
	n := len(in.Names)
	face := basicfont.Face7x13
	const cell, pad, charW, lineH = 56, 12, 7, 13
	longest := 0
	for _, name := range in.Names {
		longest = max(longest, len(name))
	}
	left := pad + longest*charW + 8
	top := pad + lineH + 8 + longest*charW + 8 // title, then rotated column labels
	legendW := 80
	width := left + n*cell + pad + legendW
	height := top + n*cell + pad
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(dst draw.Image, s string, x, y int, c color.Color) {
		dr := &font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		dr.DrawString(ascii(s))
	}
	text(img, "fANOVA interactions ("+ascii(d.Importance.Objective)+")", pad, pad+lineH-2, color.Black)
	top0 := 0.0
	for _, row := range in.Matrix {
		for _, v := range row {
			top0 = max(top0, v)
		}
	}
	if top0 <= 0 {
		top0 = 1
	}
	for i, name := range in.Names {
		y := top + i*cell
		text(img, name, left-8-len(name)*charW, y+cell/2+4, color.Black)
		// Column label: drawn flat into a strip, then turned 90° anticlockwise.
		strip := image.NewRGBA(image.Rect(0, 0, len(name)*charW+2, lineH+2))
		text(strip, name, 1, lineH-2, color.Black)
		x0 := left + i*cell + cell/2 - lineH/2
		for sx := 0; sx < strip.Bounds().Dx(); sx++ {
			for sy := 0; sy < strip.Bounds().Dy(); sy++ {
				if _, _, _, a := strip.At(sx, sy).RGBA(); a > 0 {
					img.Set(x0+sy, top-8-sx, strip.At(sx, sy))
				}
			}
		}
		for j := range in.Names {
			v := in.Matrix[i][j]
			c := ramp(v / top0)
			r := image.Rect(left+j*cell+1, y+1, left+(j+1)*cell-1, y+cell-1)
			draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
			label := fmt.Sprintf("%.2f", v)
			ink := color.Color(color.Black)
			if v/top0 > 0.55 {
				ink = color.White
			}
			text(img, label, r.Min.X+(cell-len(label)*charW)/2, r.Min.Y+cell/2+3, ink)
		}
	}
	// Colour legend: the ramp from 0 to the largest share.
	lx := left + n*cell + pad + 10
	for y := 0; y < n*cell; y++ {
		c := ramp(1 - float64(y)/float64(max(n*cell-1, 1)))
		draw.Draw(img, image.Rect(lx, top+y, lx+16, top+y+1), image.NewUniform(c), image.Point{}, draw.Src)
	}
	text(img, fmt.Sprintf("%.2f", top0), lx+20, top+10, color.Black)
	text(img, "0", lx+20, top+n*cell, color.Black)
	return png.Encode(w, img)
}

// ramp maps 0..1 to white through light blue to dark blue.
func ramp(t float64) color.RGBA {
	t = min(max(t, 0), 1)
	stops := [][3]float64{{248, 250, 252}, {116, 169, 207}, {11, 60, 125}}
	seg := t * 2
	k := min(int(seg), 1)
	f := seg - float64(k)
	a, b := stops[k], stops[k+1]
	mix := func(i int) uint8 { return uint8(a[i] + (b[i]-a[i])*f + 0.5) }
	return color.RGBA{mix(0), mix(1), mix(2), 255}
}

func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || r > 126 {
			return '?'
		}
		return r
	}, s)
}
