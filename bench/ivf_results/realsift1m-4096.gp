set terminal svg size 900,600 dynamic font 'sans,11'
set output 'realsift1m-4096.svg'
set title 'realsift1m, IVF4096,Flat: distance probing, mean of the seeds' noenhanced
set logscale x
set xlabel 'entries scanned per query'
set ylabel '10-recall@10' noenhanced
set yrange [0.8:1]
set key bottom right noenhanced
set grid
plot 'realsift1m-4096.dat' index 0 with linespoints title 'kmeans', \
  'realsift1m-4096.dat' index 1 with linespoints title 'kmeans+soar', \
  'realsift1m-4096.dat' index 2 with linespoints title 'gmm-sphe', \
  'realsift1m-4096.dat' index 3 with linespoints title 'gmm-sphe+probable', \
  'realsift1m-4096.dat' index 4 with linespoints title 'gmm-sphe+soar', \
  'realsift1m-4096.dat' index 5 with linespoints title 'gmm-sphe+tempered', \
  'realsift1m-4096.dat' index 6 with linespoints title 'gmm-diag', \
  'realsift1m-4096.dat' index 7 with linespoints title 'gmm-diag+soar'
