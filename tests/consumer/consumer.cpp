// Builds IVF16,Flat from GMM means through the installed headers and
// library, writes it, reads it back and checks that each of a few base
// vectors finds itself at distance 0 (every list probed).
#include <faiss/IndexIVF.h>
#include <faiss/IVFlib.h>
#include <faiss/index_io.h>
#include <faiss_gmm/IndexIVFTraining.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: consumer INDEX_PATH\n");
        return 2;
    }
    const int d = 12, nq = 5;
    const faiss_gmm::idx_t n = 3001;
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> x(size_t(n) * d);
    for (auto& v : x) v = g(rng);
    faiss_gmm::GaussianMixtureParameters p;
    p.niter = 3;
    p.device = faiss_gmm::Device::Cpu;
    std::unique_ptr<faiss::Index> index(
        faiss_gmm::index_factory_gmm(d, "IVF16,Flat", n, x.data(), p));
    index->add(n, x.data());
    faiss::write_index(index.get(), argv[1]);
    std::unique_ptr<faiss::Index> back(faiss::read_index(argv[1]));
    faiss::ivflib::extract_index_ivf(back.get())->nprobe = 16;
    std::vector<float> dist(nq);
    std::vector<faiss::Index::idx_t> ids(nq);
    back->search(nq, x.data(), 1, dist.data(), ids.data());
    for (int i = 0; i < nq; i++)
        if (ids[i] != i || dist[i] != 0.f) {
            fprintf(stderr, "query %d: found %lld at %g, expected itself at 0\n", i,
                    (long long)ids[i], dist[i]);
            return 1;
        }
    printf("consumer: IVF16,Flat of %lld vectors written, read back and searched\n",
           (long long)back->ntotal);
    return 0;
}
