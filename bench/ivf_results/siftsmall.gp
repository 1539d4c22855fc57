set terminal svg size 900,600 dynamic font 'sans,11'
set output 'siftsmall.svg'
set title 'siftsmall: IVF64,Flat, 10-recall@10 vs list entries scanned per query (mean of 3 seeds)' noenhanced
set logscale x
set xlabel 'entries scanned per query'
set ylabel '10-recall@10' noenhanced
set key bottom right noenhanced
set grid
plot 'siftsmall.dat' index 0 with linespoints title 'k-means', \
  'siftsmall.dat' index 1 with linespoints title 'GMM-sph single distance', \
  'siftsmall.dat' index 2 with linespoints title 'GMM-sph single posterior', \
  'siftsmall.dat' index 3 with linespoints title 'GMM-sph single adaptive', \
  'siftsmall.dat' index 4 with linespoints title 'GMM-sph multi distance', \
  'siftsmall.dat' index 5 with linespoints title 'GMM-sph multi posterior', \
  'siftsmall.dat' index 6 with linespoints title 'GMM-sph multi adaptive', \
  'siftsmall.dat' index 7 with linespoints title 'GMM-diag single distance', \
  'siftsmall.dat' index 8 with linespoints title 'GMM-diag single posterior', \
  'siftsmall.dat' index 9 with linespoints title 'GMM-diag single adaptive', \
  'siftsmall.dat' index 10 with linespoints title 'GMM-diag multi distance', \
  'siftsmall.dat' index 11 with linespoints title 'GMM-diag multi posterior', \
  'siftsmall.dat' index 12 with linespoints title 'GMM-diag multi adaptive'
