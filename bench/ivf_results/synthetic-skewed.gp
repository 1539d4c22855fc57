set terminal svg size 900,600 dynamic font 'sans,11'
set output 'synthetic-skewed.svg'
set title 'synthetic-skewed: IVF1024,Flat, 10-recall@10 vs list entries scanned per query (mean of 3 seeds)' noenhanced
set logscale x
set xlabel 'entries scanned per query'
set ylabel '10-recall@10' noenhanced
set key bottom right noenhanced
set grid
plot 'synthetic-skewed.dat' index 0 with linespoints title 'k-means', \
  'synthetic-skewed.dat' index 1 with linespoints title 'GMM-sph single distance', \
  'synthetic-skewed.dat' index 2 with linespoints title 'GMM-sph single posterior', \
  'synthetic-skewed.dat' index 3 with linespoints title 'GMM-sph single adaptive', \
  'synthetic-skewed.dat' index 4 with linespoints title 'GMM-sph multi distance', \
  'synthetic-skewed.dat' index 5 with linespoints title 'GMM-sph multi posterior', \
  'synthetic-skewed.dat' index 6 with linespoints title 'GMM-sph multi adaptive', \
  'synthetic-skewed.dat' index 7 with linespoints title 'GMM-diag single distance', \
  'synthetic-skewed.dat' index 8 with linespoints title 'GMM-diag single posterior', \
  'synthetic-skewed.dat' index 9 with linespoints title 'GMM-diag single adaptive', \
  'synthetic-skewed.dat' index 10 with linespoints title 'GMM-diag multi distance', \
  'synthetic-skewed.dat' index 11 with linespoints title 'GMM-diag multi posterior', \
  'synthetic-skewed.dat' index 12 with linespoints title 'GMM-diag multi adaptive'
