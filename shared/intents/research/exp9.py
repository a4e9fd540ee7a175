from common import *
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
import warnings; warnings.filterwarnings('ignore')
C=77
def ev(P): return (P.argmax(1)==ydev).mean()*100
for layers in [[12],[11,12],[10,11,12],[8,10,12],[9,10,11,12]]:
    mean=[exq[:,l,:].mean(0) for l in layers]
    f=lambda X: np.concatenate([nrm(X[:,l,:]-m) for l,m in zip(layers,mean)],1)
    E=f(exq); Ed=f(devq)
    for sh in ['auto',0.1,0.3,0.5,0.7]:
        m=LDA(solver='lsqr',shrinkage=sh).fit(E,ytr)
        print(layers,sh,f'{ev(m.predict_proba(Ed)):.2f}')
