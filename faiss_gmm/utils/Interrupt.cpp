#include <faiss_gmm/utils/Interrupt.h>

#include <mutex>

namespace faiss_gmm {

namespace {
std::mutex hook_mutex;
std::function<bool()> hook;
}  // namespace

void set_interrupt_callback(std::function<bool()> callback) {
    std::lock_guard<std::mutex> lock(hook_mutex);
    hook = std::move(callback);
}

void check_interrupted() {
    std::function<bool()> h;
    {
        std::lock_guard<std::mutex> lock(hook_mutex);
        h = hook;
    }
    if (h && h()) throw Interrupted();
}

}  // namespace faiss_gmm
