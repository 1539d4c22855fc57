set terminal svg size 900,600 dynamic font 'sans,11'
set output 'synthetic-aniso.svg'
set title 'synthetic-aniso: IVF1024,Flat, 10-recall@10 vs list entries scanned per query (mean of 3 seeds)' noenhanced
set logscale x
set xlabel 'entries scanned per query'
set ylabel '10-recall@10' noenhanced
set key bottom right noenhanced
set grid
plot 'synthetic-aniso.dat' index 0 with linespoints title 'k-means', \
  'synthetic-aniso.dat' index 1 with linespoints title 'GMM-sph single distance', \
  'synthetic-aniso.dat' index 2 with linespoints title 'GMM-sph single posterior', \
  'synthetic-aniso.dat' index 3 with linespoints title 'GMM-sph single adaptive', \
  'synthetic-aniso.dat' index 4 with linespoints title 'GMM-sph multi distance', \
  'synthetic-aniso.dat' index 5 with linespoints title 'GMM-sph multi posterior', \
  'synthetic-aniso.dat' index 6 with linespoints title 'GMM-sph multi adaptive', \
  'synthetic-aniso.dat' index 7 with linespoints title 'GMM-diag single distance', \
  'synthetic-aniso.dat' index 8 with linespoints title 'GMM-diag single posterior', \
  'synthetic-aniso.dat' index 9 with linespoints title 'GMM-diag single adaptive', \
  'synthetic-aniso.dat' index 10 with linespoints title 'GMM-diag multi distance', \
  'synthetic-aniso.dat' index 11 with linespoints title 'GMM-diag multi posterior', \
  'synthetic-aniso.dat' index 12 with linespoints title 'GMM-diag multi adaptive'
