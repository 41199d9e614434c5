{{! mu-panel.gp: one panel of mu.gp, a line per interval.
    Values: ylo, yhi; interval (column, label, first). }}
set yrange [{{ylo}}:{{yhi}}]
plot {{#interval}}{{^first}}, \
     {{/first}}"mu.dat" using 1:{{column}} with linespoints lw 1.5 pt 7 ps 0.7 title "{{label}}"{{/interval}}
