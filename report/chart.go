package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The chart of a mailed report is a PNG: mail clients show it inline,
// where they run no script and many show no SVG.

// Chart geometry: 720 pixels wide, a panel 300 pixels high.
const (
	chartDPI    = 96
	chartWidth  = 720 * vg.Inch / chartDPI
	panelHeight = 300 * vg.Inch / chartDPI
)

var (
	colorIn  = color.RGBA{R: 31, G: 119, B: 180, A: 255} // blue
	colorOut = color.RGBA{R: 255, G: 127, B: 14, A: 255} // orange
)

// Chart draws a tag's traffic per step (a day, in a mailed report) as bars,
// in and out; with rates, beneath, its BucketWidth rates over the period
// and their 95th percentiles. It returns the PNG.
func Chart(r *Report, t *Tag, rates bool) ([]byte, error) {
	if len(r.Steps) < 2 || len(t.Steps) != len(r.Steps)-1 {
		return nil, fmt.Errorf("the report of %s has no steps to chart", printable(t.Name))
	}
	plots := [][]*plot.Plot{{stepsPlot(r, t)}}
	if rates {
		plots = append(plots, []*plot.Plot{ratesPlot(r, t)})
	}
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, panelHeight*vg.Length(len(plots))), vgimg.UseDPI(chartDPI),
		vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: 4, PadBottom: 4, PadX: 4, PadY: 12}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// plainTicks are the default ticks, with labels such as 25 rather than
// 25.00.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}

// headroom is the space above the highest value, for the legend.
const headroom = 1.3

// siScale returns the factor and prefix that show values up to max with at
// most three digits before the point.
func siScale(max float64) (float64, string) {
	factor, prefix := 1.0, ""
	for _, p := range []string{"k", "M", "G", "T", "P", "E"} {
		if max < factor*1000 {
			break
		}
		factor, prefix = factor*1000, p
	}
	return factor, prefix
}

// stepsPlot is the bar chart of the traffic per step.
func stepsPlot(r *Report, t *Tag) *plot.Plot {
	var in, out plotter.Values
	var most float64
	for _, s := range t.Steps {
		in = append(in, float64(s.In.Bytes))
		out = append(out, float64(s.Out.Bytes))
		most = math.Max(most, math.Max(float64(s.In.Bytes), float64(s.Out.Bytes)))
	}
	factor, prefix := siScale(most)
	for i := range in {
		in[i] /= factor
		out[i] /= factor
	}
	p := plot.New()
	p.Title.Text = "Traffic per day"
	p.Y.Label.Text = prefix + "B"
	p.Y.Tick.Marker = plainTicks{}
	p.Y.Min, p.Y.Max = 0, math.Max(most/factor*headroom, 1) // 1: a period without traffic still gets an axis
	p.Legend.Top = true
	n := len(t.Steps)
	width := vg.Points(math.Min(10, 470/(2.6*float64(n))))
	barIn, _ := plotter.NewBarChart(in, width) // errors only for NaN and infinities
	barIn.Color, barIn.LineStyle.Width = colorIn, 0
	barIn.Offset = -width / 2
	barOut, _ := plotter.NewBarChart(out, width)
	barOut.Color, barOut.LineStyle.Width = colorOut, 0
	barOut.Offset = width / 2
	p.Add(plotter.NewGrid(), barIn, barOut)
	p.X.Min, p.X.Max = -0.7, float64(n)-0.3 // room for the outer bars
	p.Legend.Add("in", barIn)
	p.Legend.Add("out", barOut)
	// Day numbers, as many as fit.
	every := (n + 15) / 16
	names := make([]string, n)
	for k := range names {
		if k%every == 0 {
			names[k] = r.Steps[k].Format("2")
			if r.Steps[k].Month() != r.Steps[0].Month() || k == 0 {
				names[k] = r.Steps[k].Format("Jan 2")
			}
		}
	}
	p.NominalX(names...)
	return p
}

// ratesPlot is the line chart of the BucketWidth rates, in and out, with a
// dashed line at each 95th percentile.
func ratesPlot(r *Report, t *Tag) *plot.Plot {
	most := math.Max(t.In.P95, t.Out.P95)
	for _, v := range append(t.Rates.In, t.Rates.Out...) {
		most = math.Max(most, v)
	}
	factor, prefix := siScale(most)
	loc := r.Period.From.Location()
	p := plot.New()
	p.Title.Text = "5-minute rates and their 95th percentile"
	p.Y.Label.Text = prefix + "bit/s"
	p.Y.Tick.Marker = plainTicks{}
	p.Y.Min, p.Y.Max = 0, math.Max(most/factor*headroom*headroom, 1) // four lines of legend
	p.Legend.Top = true
	format := "Jan 2"
	if r.End.Sub(r.Period.From) < 72*time.Hour {
		format = "Jan 2 15:04"
	}
	p.X.Tick.Marker = plot.TimeTicks{Format: format, Time: func(t float64) time.Time { return time.Unix(int64(t), 0).In(loc) }}
	p.X.Min = float64(r.Period.From.Unix())
	p.X.Max = float64(r.End.Unix())
	p.Add(plotter.NewGrid())
	for _, d := range []struct {
		name  string
		rates []float64
		p95   float64
		color color.Color
	}{{"in", t.Rates.In, t.In.P95, colorIn}, {"out", t.Rates.Out, t.Out.P95, colorOut}} {
		xys := make(plotter.XYs, len(d.rates))
		for k, v := range d.rates {
			xys[k].X = float64(r.Period.From.Add(time.Duration(k) * BucketWidth).Unix())
			xys[k].Y = v / factor
		}
		if len(xys) > 0 {
			line, _ := plotter.NewLine(xys) // errors only for NaN and infinities
			line.Color, line.Width = d.color, vg.Points(0.6)
			p.Add(line)
			p.Legend.Add(d.name, line)
		}
		p95 := plotter.NewFunction(func(float64) float64 { return d.p95 / factor })
		p95.Color, p95.Width, p95.Dashes = d.color, vg.Points(1.5), []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(p95)
		p.Legend.Add(fmt.Sprintf("%s, 95th percentile: %s", d.name, humanBits(d.p95)), p95)
	}
	return p
}
